"""smoke.py's machinery (issue 24) on the tiny preset: train 2 steps, resume 1, eval, smoke.json.

The three phases run in-process here (a subprocess per phase costs a torch import each); the real
subprocess path is what `make smoke-alpha-invariance` runs and the README records.
"""

from __future__ import annotations

import contextlib
import io
import json
import time

from alpha_invariance import smoke

from .conftest import TINY
from .test_errors import _script


def _in_process(cmd: list[str], log):
    """Stand-in for smoke._run: run train.py / eval.py's main in this process."""
    script = _script(cmd[1].removesuffix(".py"))
    buf = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        script.main(cmd[2:])
    log.write_text(buf.getvalue())
    return 0, time.perf_counter() - start, 123.0, buf.getvalue()


def test_smoke_machinery_on_tiny_preset(tmp_path, monkeypatch):
    monkeypatch.setattr(smoke, "_run", _in_process)
    result = smoke.run_smoke(str(tmp_path / "smoke"), "cpu", 64, ["dvgo"], crop=8, preset=TINY)
    saved = json.loads((tmp_path / "smoke" / "smoke.json").read_text())
    assert saved == result and result["ok"], result
    keys = {"subproject", "device", "ok", "train_s", "resume_s", "eval_s", "wall_s",
            "peak_rss_mib", "cuda_max_mem_mib", "batch_size", "paper_batch_size", "note"}
    assert keys <= set(result) and result["cuda_max_mem_mib"] is None
    assert result["batch_size"] == 64 and result["paper_batch_size"] == 512
    assert "rays/batch reduced from 512" in result["note"]
    rec = result["families"][0]
    assert rec["peak_rss_mib"] == 123 and rec["eval_psnr"] > 0
    run = tmp_path / "smoke" / "dvgo" / "run"
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["split"] == "train"][-1] == 3
    assert len(json.loads((run / "eval" / "test.json").read_text())["per_view"]) == 1


def test_smoke_reports_a_failed_resume(tmp_path, monkeypatch):
    def no_resume(cmd, log):
        log.write_text("trained")
        return 0, 0.1, 1.0, "trained"

    monkeypatch.setattr(smoke, "_run", no_resume)
    result = smoke.run_smoke(str(tmp_path / "s"), "cpu", None, ["tensorf"], preset=TINY)
    assert not result["ok"] and "resume did not report" in result["families"][0]["error"]
    assert "FAILED" in result["note"]

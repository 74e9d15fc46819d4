import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, SMALL, TINY

sys.path.insert(0, ROOT)
import eval as eval_cli  # noqa: E402
import train as train_cli  # noqa: E402


def test_train_eval_round_trip(tmp_path):
    res = train_cli.main(["--config", TINY, *SMALL, "--steps", "3", "--out_dir", str(tmp_path)])
    assert Path(res["run_dir"]) == tmp_path
    for name in ("config.json", "metrics.jsonl", "ckpt/last.pt"):
        assert (tmp_path / name).is_file(), name
    out = eval_cli.main(["--ckpt", str(tmp_path / "ckpt/last.pt"), "--iw_samples", "3"])
    saved = json.loads((tmp_path / "eval/val.json").read_text())
    assert saved["nll"] == pytest.approx(out["nll"]) and saved["step"] == 3
    assert [lv["level"] for lv in saved["levels"]] == [1, 2, 3, 4, 5]
    for fig in ("levels.png", "skip_reconstructions.png"):
        assert (tmp_path / "eval" / fig).stat().st_size > 1000


def test_eval_rejects_broken_checkpoint(tmp_path):
    bad = tmp_path / "last.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        eval_cli.main(["--ckpt", str(bad)])
    with pytest.raises(FileNotFoundError):
        eval_cli.main(["--ckpt", str(tmp_path / "missing.pt")])


def test_unknown_key_from_command_line_exits_nonzero(tmp_path):
    proc = subprocess.run([sys.executable, "train.py", "--config", TINY, "--bogus", "1"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode != 0 and "valid keys" in proc.stderr

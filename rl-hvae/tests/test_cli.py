"""CLI round trip and the issue-23 probe: user errors are one line on stderr with exit 2."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, SMALL, TINY

sys.path.insert(0, ROOT)
import eval as eval_cli  # noqa: E402
import train as train_cli  # noqa: E402
from rl_hvae.runtime import CheckpointError, UserError, cli  # noqa: E402


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One 3-step tiny run, shared by the tests of this module."""
    out = tmp_path_factory.mktemp("run")
    res = train_cli.main(["--config", TINY, *SMALL, "--steps", "3", "--out_dir", str(out)])
    return out, res


def test_train_eval_round_trip(run):
    out, res = run
    assert Path(res["run_dir"]) == out
    for name in ("config.json", "metrics.jsonl", "ckpt/last.pt"):
        assert (out / name).is_file(), name
    res = eval_cli.main(["--ckpt", str(out / "ckpt/last.pt"), "--iw_samples", "3"])
    saved = json.loads((out / "eval/val.json").read_text())
    assert saved["nll"] == pytest.approx(res["nll"]) and saved["step"] == 3
    assert 0.0 <= saved["svm_top_released"] <= 1.0 and saved["arch_skips"] == "released"
    assert [lv["level"] for lv in saved["levels"]] == [1, 2, 3, 4, 5]
    for fig in ("levels.png", "skip_reconstructions.png"):
        assert (out / "eval" / fig).stat().st_size > 1000


def _probe(main, argv, capsys) -> str:
    """Run `main` through `cli`; it must exit 2 with exactly one stderr line `error: ...`."""
    with pytest.raises(SystemExit) as info:
        cli(main, argv)
    err = capsys.readouterr().err
    assert info.value.code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "weights_only" not in err and "Traceback" not in err
    return lines[0]


def test_probe_unknown_key(capsys):
    line = _probe(train_cli.main, ["--config", TINY, "--no_such_key", "1"], capsys)
    assert "unknown config key" in line and "valid keys" in line


def test_probe_missing_data_root(capsys, tmp_path):
    line = _probe(train_cli.main, ["--config", TINY, "--data_name", "fashion_mnist",
                                   "--data_root", "/nonexistent", "--out_dir", str(tmp_path)],
                  capsys)
    assert "data_root /nonexistent does not exist" in line
    line = _probe(train_cli.main, ["--config", TINY, "--data_root", "/nonexistent"], capsys)
    assert "data_name='digits'" in line


def test_probe_checkpoints(capsys, tmp_path, run):
    out, _ = run
    assert "checkpoint not found: /nonexistent/last.pt" in _probe(
        eval_cli.main, ["--ckpt", "/nonexistent/last.pt"], capsys)
    notes = tmp_path / "notes.txt"
    notes.write_text("these are my notes\n")
    line = _probe(eval_cli.main, ["--ckpt", str(notes)], capsys)
    assert line.startswith(f"error: not a readable checkpoint of rl-hvae: {notes}")
    data = (out / "ckpt/last.pt").read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    assert "not a readable checkpoint of rl-hvae" in _probe(eval_cli.main, ["--ckpt", str(cut)],
                                                            capsys)
    assert "eval.py: the following arguments are required: --ckpt" in _probe(
        eval_cli.main, [], capsys)


def test_debug_flag_shows_the_traceback(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    with pytest.raises(CheckpointError):
        cli(eval_cli.main, ["--ckpt", str(notes), "--debug"])
    with pytest.raises(UserError):
        cli(train_cli.main, ["--config", TINY, "--no_such_key", "1", "--debug"])


def test_programming_errors_still_raise():
    def broken(argv):
        raise AssertionError("bug")

    with pytest.raises(AssertionError):
        cli(broken, [])


def test_probe_as_a_real_subprocess(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a checkpoint")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "eval.py", "--ckpt", str(notes)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: not a readable checkpoint of rl-hvae: {notes} (not a torch checkpoint file: "
        "no zip archive header)"]

"""Issue 23 contract: one-line user errors with exit 2 (--debug shows the traceback), safe
checkpoint reading, last.pt / last.prev.pt rotation and the resume fallback."""

import os
import runpy
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, SMALL, TINY
from eye_radiance.runtime import (
    CheckpointError,
    UserError,
    cli,
    load_checkpoint,
    resume_checkpoint,
    save_checkpoint,
)

sys.path.insert(0, ROOT)
import eval as eval_cli  # noqa: E402
import train as train_cli  # noqa: E402


def _probe(main, argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli(main, argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, small_capture):
    out = tmp_path_factory.mktemp("run")
    train_cli.main(["--config", TINY, *SMALL, "--data_root", str(small_capture), "--steps", "2",
                    "--out_dir", str(out)])
    return out / "ckpt" / "last.pt"


def test_probe_user_errors_are_one_line_exit_2(capsys, tmp_path, trained):
    assert "unknown config key(s) ['no_such_key']" in _probe(
        train_cli.main, ["--config", TINY, "--no_such_key", "1"], capsys)
    assert "capture folder not found: /nonexistent" in _probe(
        train_cli.main, ["--config", TINY, "--data_root", "/nonexistent"], capsys)
    assert "checkpoint not found" in _probe(eval_cli.main, ["--ckpt", "/nonexistent/last.pt"],
                                            capsys)
    notes = tmp_path / "notes.txt"
    notes.write_text("not a checkpoint\n")
    line = _probe(eval_cli.main, ["--ckpt", str(notes)], capsys)
    assert line.startswith("error: not a readable checkpoint of eye-radiance: ")
    assert "weights_only" not in line
    truncated = tmp_path / "trunc.pt"
    truncated.write_bytes(trained.read_bytes()[: trained.stat().st_size // 2])
    line = _probe(eval_cli.main, ["--ckpt", str(truncated)], capsys)
    assert "not a readable checkpoint of eye-radiance" in line and "weights_only" not in line
    blocked = tmp_path / "file"
    blocked.write_text("")
    assert "cannot write to output folder" in _probe(
        train_cli.main, ["--config", TINY, "--out_dir", str(blocked / "run")], capsys)
    with pytest.raises(CheckpointError):  # --debug: the exception propagates
        cli(eval_cli.main, ["--ckpt", str(notes), "--debug"])


def test_probe_as_a_real_subprocess(tmp_path):
    """One real interpreter: the exit status and stderr of `python eval.py --ckpt notes.txt`."""
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    done = subprocess.run([sys.executable, "eval.py", "--ckpt", str(notes)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert done.returncode == 2 and lines[-1].startswith("error: not a readable checkpoint of "
                                                         "eye-radiance: "), done.stderr[-2000:]
    assert len([ln for ln in lines if not ln.startswith(("warn", " "))
                and "Warning" not in ln]) == 1, lines
    assert "weights_only" not in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("script", ["train.py", "eval.py"])
def test_scripts_run_as_main_go_through_cli(script, tmp_path, monkeypatch, capsys):
    """Each script's `__main__` block (run as a script, in this process: no second torch import)
    turns a user error into one line and exit 2, and lets it through with --debug."""
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    argv = (["--config", TINY, "--no_such_key", "1"] if script == "train.py"
            else ["--ckpt", str(notes)])
    monkeypatch.setattr(sys, "argv", [script, *argv])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(os.path.join(ROOT, script), run_name="__main__")
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert exit_info.value.code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    monkeypatch.setattr(sys, "argv", [script, *argv, "--debug"])
    with pytest.raises(UserError):
        runpy.run_path(os.path.join(ROOT, script), run_name="__main__")


def test_checkpoint_rotation_and_fallback(tmp_path, capsys):
    ckpt = tmp_path / "ckpt" / "last.pt"
    save_checkpoint(ckpt, step=1, config={}, model={"w": torch.ones(2)})
    save_checkpoint(ckpt, step=2, config={}, model={"w": torch.ones(2) * 2})
    assert load_checkpoint(tmp_path / "ckpt" / "last.prev.pt")["step"] == 1
    assert resume_checkpoint(tmp_path / "ckpt")["step"] == 2
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    assert resume_checkpoint(tmp_path / "ckpt")["step"] == 1
    err = capsys.readouterr().err
    assert err.startswith("warning: ") and "resuming from" in err and "(step 1)" in err
    (tmp_path / "ckpt" / "last.prev.pt").write_text("junk")
    with pytest.raises(CheckpointError):
        resume_checkpoint(tmp_path / "ckpt")
    assert resume_checkpoint(tmp_path / "empty") is None
    import pickle

    foreign = tmp_path / "foreign.pt"
    foreign.write_bytes(pickle.dumps({"x": print}))
    with pytest.raises(CheckpointError, match="not a readable checkpoint") as info:
        load_checkpoint(foreign)
    assert "weights_only" not in str(info.value)
    torch.save({"format_version": 1}, tmp_path / "old.pt")
    with pytest.raises(CheckpointError, match="format_version"):
        load_checkpoint(tmp_path / "old.pt")


def test_truncated_last_resumes_from_prev_like_an_uninterrupted_run(tmp_path, small_capture,
                                                                    capsys):
    args = ["--config", TINY, *SMALL, "--data_root", str(small_capture), "--save_every", "2"]
    train_cli.main([*args, "--steps", "4", "--out_dir", str(tmp_path / "a")])
    last = tmp_path / "a" / "ckpt" / "last.pt"
    assert torch.load(tmp_path / "a/ckpt/last.prev.pt", weights_only=True)["step"] == 2
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    capsys.readouterr()
    train_cli.main([*args, "--steps", "6", "--out_dir", str(tmp_path / "a")])
    captured = capsys.readouterr()
    assert "resuming from" in captured.err and "(step 2)" in captured.err
    train_cli.main([*args, "--steps", "6", "--out_dir", str(tmp_path / "b")])
    a = torch.load(last, weights_only=True)
    b = torch.load(tmp_path / "b/ckpt/last.pt", weights_only=True)
    assert a["step"] == b["step"] == 6
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_foreign_config_checkpoint_is_a_user_error(tmp_path, trained, small_capture):
    ckpt = torch.load(trained, weights_only=True)
    ckpt["config"]["field_hidden_dim"] = 8  # weights of another shape than the config says
    torch.save(ckpt, tmp_path / "other.pt")
    with pytest.raises(UserError, match="do not fit the model of its config"):
        eval_cli.main(["--ckpt", str(tmp_path / "other.pt")])
    with pytest.raises(UserError, match="another model/data config"):
        train_cli.main(["--config", TINY, *SMALL, "--data_root", str(small_capture),
                        "--field_hidden_dim", "8", "--steps", "3",
                        "--out_dir", str(trained.parent.parent)])

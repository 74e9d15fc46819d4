"""User errors as one line with exit status 2, unreadable checkpoints refused safely, and a
run that resumes from the previous checkpoint when last.pt is damaged (issue 23)."""

import subprocess
import sys

import pytest
import torch
from conftest import ROOT
from test_cli import _script

from facetalk.config import parse_config
from facetalk.engine import fit
from facetalk.runtime import (
    CheckpointError,
    UserError,
    cli,
    load_checkpoint,
    previous_path,
    resume_checkpoint,
    save_checkpoint,
)


class Evil:
    """Any class: safe loading must refuse to rebuild it from a pickle."""


def _probe(main, argv, capsys) -> str:
    """Run a script's main through `cli`; return its one stderr line after checking exit 2."""
    with pytest.raises(SystemExit) as exc:
        cli(main, argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from conftest import TEST_ARGS

    out = tmp_path_factory.mktemp("run")
    fit(parse_config(TEST_ARGS + ["--steps", "2", "--save_every", "1", "--out_dir", str(out)]))
    return out


def test_probe_one_line_and_exit_2(tiny_args, trained, tmp_path, capsys):
    train, evaluate = _script("train"), _script("eval")
    line = _probe(train.main, tiny_args + ["--no_such_key", "1"], capsys)
    assert "no_such_key" in line and "valid keys" in line
    line = _probe(train.main, tiny_args + ["--data_name", "nphm_talk", "--data_root",
                                           str(tmp_path / "missing")], capsys)
    assert "data_root" in line and "is not a folder" in line
    line = _probe(evaluate.main, ["--ckpt", "/nonexistent/last.pt"], capsys)
    assert "checkpoint not found" in line
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes, not a checkpoint\n")
    line = _probe(evaluate.main, ["--ckpt", str(notes)], capsys)
    assert "not a readable checkpoint of facetalk" in line and "weights_only" not in line
    data = (trained / "ckpt" / "last.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    line = _probe(evaluate.main, ["--ckpt", str(tmp_path / "cut.pt")], capsys)
    assert "not a readable checkpoint" in line and "weights_only" not in line
    line = _probe(evaluate.main, ["--split", "test"], capsys)  # no --ckpt
    assert "--ckpt" in line
    line = _probe(train.main, tiny_args + ["--out_dir", "/proc/not-writable"], capsys)
    assert "cannot write the run folder" in line


def test_foreign_checkpoint_is_a_user_error(tmp_path):
    save_checkpoint(tmp_path / "x.pt", kind="another-model", step=0, config={}, model={})
    with pytest.raises(CheckpointError, match="not a facetalk checkpoint"):
        _script("eval").main(["--ckpt", str(tmp_path / "x.pt")])


def test_debug_shows_the_traceback(tiny_args):
    with pytest.raises(UserError, match="no_such_key"):
        cli(_script("train").main, tiny_args + ["--no_such_key", "1", "--debug"])


def test_subprocess_exit_status_and_single_stderr_line(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    done = subprocess.run([sys.executable, str(ROOT / "eval.py"), "--ckpt", str(notes)],
                          check=False, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: not a readable checkpoint"), lines
    assert "weights_only" not in done.stderr and "Traceback" not in done.stderr


def test_refused_pickle_is_reported_without_unsafe_advice(tmp_path):
    torch.save({"format_version": 1, "obj": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(tmp_path / "evil.pt")
    assert "weights_only" not in str(exc.value) and "safe loading refuses" in str(exc.value)


def test_save_keeps_the_previous_checkpoint_and_resume_falls_back(tmp_path, capsys):
    ckpt_dir = tmp_path / "ckpt"
    assert resume_checkpoint(ckpt_dir) is None
    save_checkpoint(ckpt_dir / "last.pt", step=1)
    save_checkpoint(ckpt_dir / "last.pt", step=2)
    assert load_checkpoint(previous_path(ckpt_dir / "last.pt"))["step"] == 1
    assert not list(ckpt_dir.glob("*.tmp"))
    (ckpt_dir / "last.pt").write_bytes(b"\x00" * 10)
    assert resume_checkpoint(ckpt_dir)["step"] == 1
    assert "resuming from" in capsys.readouterr().err
    (ckpt_dir / "last.pt").unlink()  # killed between the two renames of a save
    assert resume_checkpoint(ckpt_dir)["step"] == 1
    previous_path(ckpt_dir / "last.pt").write_text("x")
    with pytest.raises(CheckpointError):
        resume_checkpoint(ckpt_dir)


def test_truncated_last_resumes_like_the_uninterrupted_run(tiny_args, tmp_path, capsys):
    args = tiny_args + ["--save_every", "1"]
    fit(parse_config(args + ["--steps", "4", "--out_dir", str(tmp_path / "full")]))
    fit(parse_config(args + ["--steps", "3", "--out_dir", str(tmp_path / "cut")]))
    last = tmp_path / "cut" / "ckpt" / "last.pt"  # step 3; last.prev.pt holds step 2
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    fit(parse_config(args + ["--steps", "4", "--out_dir", str(tmp_path / "cut")]))
    assert "resuming from" in capsys.readouterr().err
    full = torch.load(tmp_path / "full" / "ckpt" / "last.pt", weights_only=True)
    cut = torch.load(last, weights_only=True)
    assert full["step"] == cut["step"] == 4
    for k in full["model"]:
        torch.testing.assert_close(full["model"][k], cut["model"][k], msg=k)

"""User errors as one line with exit status 2, unreadable checkpoints refused safely, and a
run that resumes from the previous checkpoint when last.pt is damaged (issue 23)."""

import dataclasses
import subprocess
import sys

import pytest
import torch

from ccdae_similarity import engine
from ccdae_similarity.runtime import (
    CheckpointError,
    UserError,
    cli,
    load_checkpoint,
    previous_path,
    resume_checkpoint,
    save_checkpoint,
)

from .conftest import ROOT
from .test_cli import _import

TINY = str(ROOT / "configs" / "tiny.toml")


class Evil:
    """Any class: safe loading must refuse to rebuild it from a pickle."""


def _probe(main, argv, capsys) -> str:
    """Run a script's main through `cli`; return its stderr after checking exit status 2."""
    with pytest.raises(SystemExit) as exc:
        cli(main, argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2-step tiny run with a checkpoint at step 1 and at step 2 (last.pt + last.prev.pt)."""
    out = tmp_path_factory.mktemp("run")
    _import("train").main(["--config", TINY, "--steps", "2", "--save_every", "1",
                           "--model_dim", "32", "--unet_channels", "16,32",
                           "--diffusion_steps", "20", "--batch_size", "4", "--out_dir", str(out)])
    return out


def test_probe_one_line_and_exit_2(trained, tmp_path, capsys):
    train, evaluate = _import("train"), _import("eval")
    line = _probe(train.main, ["--config", TINY, "--no_such_key", "1"], capsys)
    assert "no_such_key" in line and "valid keys" in line
    line = _probe(evaluate.main, ["--ckpt", "/nonexistent/last.pt"], capsys)
    assert "checkpoint not found" in line
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes, not a checkpoint\n")
    line = _probe(evaluate.main, ["--ckpt", str(notes)], capsys)
    assert "not a readable checkpoint of ccdae-similarity" in line and "weights_only" not in line
    data = (trained / "ckpt" / "last.pt").read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    line = _probe(evaluate.main, ["--ckpt", str(cut)], capsys)
    assert "not a readable checkpoint" in line and "weights_only" not in line
    line = _probe(evaluate.main, ["--ckpt", str(trained / "ckpt" / "last.pt"), "--bench_name",
                                  "stsb", "--data_root", str(tmp_path / "missing")], capsys)
    assert "data_root" in line
    line = _probe(train.main, ["--config", TINY, "--out_dir", "/proc/not-writable"], capsys)
    assert "cannot write the run folder" in line
    line = _probe(evaluate.main, [], capsys)
    assert "--ckpt" in line


def test_debug_shows_the_traceback(capsys):
    with pytest.raises(UserError, match="no_such_key"):
        cli(_import("train").main, ["--config", TINY, "--no_such_key", "1", "--debug"])


def test_subprocess_exit_status_and_single_stderr_line(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    done = subprocess.run([sys.executable, str(ROOT / "eval.py"), "--ckpt", str(notes)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: not a readable checkpoint"), lines
    assert "weights_only" not in done.stderr and "Traceback" not in done.stderr


def test_refused_pickle_is_reported_without_unsafe_advice(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "obj": Evil()}, path)
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path)
    assert "weights_only" not in str(exc.value) and "safe loading refuses" in str(exc.value)


def test_save_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "ckpt" / "last.pt"
    save_checkpoint(path, step=1)
    assert not previous_path(path).exists()
    save_checkpoint(path, step=2)
    assert load_checkpoint(path)["step"] == 2 and load_checkpoint(previous_path(path))["step"] == 1
    assert not list(path.parent.glob("*.tmp"))


def test_resume_falls_back_when_last_is_damaged_or_missing(tmp_path, capsys):
    ckpt_dir = tmp_path / "ckpt"
    assert resume_checkpoint(ckpt_dir) is None
    save_checkpoint(ckpt_dir / "last.pt", step=1)
    save_checkpoint(ckpt_dir / "last.pt", step=2)
    (ckpt_dir / "last.pt").write_bytes(b"\x00" * 10)
    assert resume_checkpoint(ckpt_dir)["step"] == 1
    assert "resuming from" in capsys.readouterr().err
    (ckpt_dir / "last.pt").unlink()  # killed between the two renames of a save
    assert resume_checkpoint(ckpt_dir)["step"] == 1
    previous_path(ckpt_dir / "last.pt").write_text("x")
    with pytest.raises(CheckpointError):
        resume_checkpoint(ckpt_dir)


def test_truncated_last_resumes_like_the_uninterrupted_run(tiny_cfg, tmp_path, capsys):
    base = dataclasses.replace(tiny_cfg, batch_size=4, log_every=1, save_every=1)
    engine.fit(dataclasses.replace(base, steps=4, out_dir=str(tmp_path / "full")))
    engine.fit(dataclasses.replace(base, steps=3, out_dir=str(tmp_path / "cut")))
    last = tmp_path / "cut" / "ckpt" / "last.pt"  # step 3; last.prev.pt holds step 2
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    out = engine.fit(dataclasses.replace(base, steps=4, out_dir=str(tmp_path / "cut")))
    assert "resuming from" in capsys.readouterr().err and out["step"] == 4
    full = torch.load(tmp_path / "full" / "ckpt" / "last.pt", weights_only=True)["model"]
    cut = torch.load(last, weights_only=True)["model"]
    for k in full:
        torch.testing.assert_close(full[k], cut[k], msg=k)


def test_eval_max_pairs_scores_only_that_many(tiny_system, tiny_cfg):
    from ccdae_similarity import evaluation

    cfg = dataclasses.replace(tiny_cfg, eval_max_pairs=2)
    res = evaluation.world_benchmark(tiny_system, cfg, "text")
    assert res["pairs"] == 2 and res["triplets"] == 0

"""Crash-safe checkpoints (issue 23): rotation, safe reading, fallback to last.prev.pt."""

import io
import os
import pickle
import sys

import pytest
import torch

from conftest import ROOT, SMALL, TINY
from rl_hvae.runtime import (
    FORMAT_VERSION,
    CheckpointError,
    load_checkpoint,
    resume_checkpoint,
    save_checkpoint,
)

sys.path.insert(0, ROOT)
import eval as eval_cli  # noqa: E402
import train as train_cli  # noqa: E402

BASE = {"config": {}, "model": {"w": torch.ones(2)}, "optimizer": {}}


def test_save_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "ckpt" / "last.pt"
    save_checkpoint(path, step=1, **BASE)
    assert not (tmp_path / "ckpt" / "last.prev.pt").exists()
    save_checkpoint(path, step=2, **BASE)
    assert load_checkpoint(path)["step"] == 2
    assert load_checkpoint(tmp_path / "ckpt" / "last.prev.pt")["step"] == 1
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.prev.pt", "last.pt"]


class _Evil:
    def __reduce__(self):
        return (os.system, ("true",))


def _bad_files(tmp_path, good: bytes) -> dict:
    buf = io.BytesIO()
    torch.save({"format_version": FORMAT_VERSION, "obj": _Evil()}, buf)
    wrong = io.BytesIO()
    torch.save({"format_version": 99, **BASE, "step": 1}, wrong)
    keys = io.BytesIO()
    torch.save({"format_version": FORMAT_VERSION, "step": 1}, keys)
    return {"text": b"my notes\n", "truncated": good[: len(good) // 2], "empty": b"",
            "random": bytes(range(256)) * 4, "pickle_with_globals": buf.getvalue(),
            "wrong_version": wrong.getvalue(), "missing_keys": keys.getvalue(),
            "plain_pickle": pickle.dumps({"format_version": FORMAT_VERSION})}


def test_unreadable_files_give_one_safe_message(tmp_path):
    save_checkpoint(tmp_path / "good.pt", step=1, **BASE)
    good = (tmp_path / "good.pt").read_bytes()
    for name, data in _bad_files(tmp_path, good).items():
        path = tmp_path / f"{name}.pt"
        path.write_bytes(data)
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(path)
        msg = str(info.value)
        assert msg.startswith(f"not a readable checkpoint of rl-hvae: {path} ("), (name, msg)
        assert "weights_only" not in msg and "\n" not in msg, name
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(FileNotFoundError):  # also a FileNotFoundError, for old callers
        load_checkpoint(tmp_path / "nope.pt")


def test_resume_falls_back_to_prev_with_a_warning(tmp_path, capsys):
    ckpt = tmp_path / "ckpt"
    assert resume_checkpoint(ckpt) is None  # fresh start
    save_checkpoint(ckpt / "last.pt", step=1, **BASE)
    save_checkpoint(ckpt / "last.pt", step=2, **BASE)
    assert resume_checkpoint(ckpt)["step"] == 2
    data = (ckpt / "last.pt").read_bytes()
    (ckpt / "last.pt").write_bytes(data[: len(data) // 2])
    assert resume_checkpoint(ckpt)["step"] == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"warning: {ckpt / 'last.pt'} is not readable (")
    assert err[0].endswith(f"resuming from {ckpt / 'last.prev.pt'} (step 1)")
    (ckpt / "last.pt").unlink()  # killed between the two renames of a save
    assert resume_checkpoint(ckpt)["step"] == 1
    (ckpt / "last.prev.pt").write_text("garbage")
    (ckpt / "last.pt").write_text("garbage")
    with pytest.raises(CheckpointError, match="neither"):
        resume_checkpoint(ckpt)


def test_truncated_last_resumes_from_prev_and_matches_uninterrupted_run(tmp_path, capsys):
    """Probe 7: saves at steps 2 and 4, last.pt truncated, the same command resumes from
    last.prev.pt (step 2) and ends with the same weights as a run never interrupted."""
    args = ["--config", TINY, *SMALL, "--steps", "4", "--save_every", "2"]
    train_cli.main([*args, "--out_dir", str(tmp_path / "full")])
    run = tmp_path / "cut"
    train_cli.main([*args, "--out_dir", str(run)])
    assert load_checkpoint(run / "ckpt/last.prev.pt")["step"] == 2
    data = (run / "ckpt/last.pt").read_bytes()
    (run / "ckpt/last.pt").write_bytes(data[: len(data) // 2])
    capsys.readouterr()
    train_cli.main([*args, "--out_dir", str(run)])
    captured = capsys.readouterr()
    assert "resuming from" in captured.err and "(step 2)" in captured.err
    full = load_checkpoint(tmp_path / "full/ckpt/last.pt")
    again = load_checkpoint(run / "ckpt/last.pt")
    assert again["step"] == full["step"] == 4
    for k, v in full["model"].items():
        assert torch.equal(v, again["model"][k]), k
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        eval_cli.main(["--ckpt", str(_truncated_copy(run, tmp_path))])


def _truncated_copy(run, tmp_path):
    data = (run / "ckpt/last.pt").read_bytes()
    out = tmp_path / "truncated.pt"
    out.write_bytes(data[: len(data) // 3])
    return out

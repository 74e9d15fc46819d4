"""Checkpoint safety (issue 23): rotation to last.prev.pt, refusal of foreign files, fallback."""

from __future__ import annotations

import pickle

import pytest
import torch

from alpha_invariance.config import parse_config
from alpha_invariance.engine import fit
from alpha_invariance.runtime import (
    CheckpointError,
    UserError,
    load_checkpoint,
    resume_checkpoint,
    save_checkpoint,
)


def _state(step: int) -> dict:
    return {"step": step, "config": {}, "spec": {}, "model": {"w": torch.full((2,), float(step))}}


def test_save_rotates_previous(tmp_path):
    path = tmp_path / "ckpt" / "last.pt"
    save_checkpoint(path, **_state(1))
    assert not (tmp_path / "ckpt" / "last.prev.pt").exists()
    save_checkpoint(path, **_state(2))
    assert load_checkpoint(path)["step"] == 2
    assert load_checkpoint(tmp_path / "ckpt" / "last.prev.pt")["step"] == 1
    assert not list((tmp_path / "ckpt").glob("*.tmp"))


def _write_bad(path, kind: str, good: bytes) -> None:
    if kind == "text":
        path.write_text("these are my notes, not a checkpoint\n")
    elif kind == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif kind == "random":
        path.write_bytes(bytes(range(256)) * 8)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "evil_pickle":  # a global that weights_only loading refuses
        path.write_bytes(pickle.dumps({"format_version": 1, "x": print}))
    elif kind == "wrong_version":
        torch.save({"format_version": 99, "step": 1}, path)
    elif kind == "wrong_keys":
        torch.save({"format_version": 1, "weights": {}}, path)
    elif kind == "not_a_dict":
        torch.save([1, 2, 3], path)


BAD = ["text", "truncated", "random", "empty", "evil_pickle", "wrong_version", "wrong_keys",
       "not_a_dict"]


@pytest.mark.parametrize("kind", BAD)
def test_unreadable_checkpoint_is_a_checkpoint_error(tmp_path, kind):
    good = tmp_path / "good.pt"
    save_checkpoint(good, **_state(1))
    bad = tmp_path / "bad.pt"
    _write_bad(bad, kind, good.read_bytes())
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(bad)
    text = str(info.value)
    assert text.startswith("not a readable checkpoint of alpha-invariance: ")
    assert str(bad) in text and "weights_only" not in text and "\n" not in text
    if kind in ("truncated", "empty"):
        assert "truncated or corrupted" in text, text


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nope.pt")


def test_resume_falls_back_to_previous(tmp_path, capsys):
    ckpt_dir = tmp_path / "ckpt"
    assert resume_checkpoint(ckpt_dir) is None  # fresh start
    save_checkpoint(ckpt_dir / "last.pt", **_state(1))
    save_checkpoint(ckpt_dir / "last.pt", **_state(2))
    assert resume_checkpoint(ckpt_dir)["step"] == 2
    raw = (ckpt_dir / "last.pt").read_bytes()
    (ckpt_dir / "last.pt").write_bytes(raw[: len(raw) // 2])
    assert resume_checkpoint(ckpt_dir)["step"] == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: ") and "last.prev.pt (step 1)" in err[0]
    (ckpt_dir / "last.pt").unlink()  # missing last.pt: also the previous one
    assert resume_checkpoint(ckpt_dir)["step"] == 1
    (ckpt_dir / "last.pt").write_text("junk")
    (ckpt_dir / "last.prev.pt").write_text("junk")
    with pytest.raises(CheckpointError, match="neither"):
        resume_checkpoint(ckpt_dir)


def test_truncated_last_resumes_from_previous_and_matches(tiny_argv, tmp_path, capsys):
    """Saves at steps 2 and 4; last.pt cut in half; the resumed run equals the uninterrupted."""
    def argv(name: str) -> list[str]:
        return tiny_argv[:-1] + [str(tmp_path / name), "--steps", "4", "--save_every", "2"]

    fit(parse_config(argv("full")))
    fit(parse_config(argv("cut")))
    ckpt_dir = tmp_path / "cut" / "ckpt"
    assert load_checkpoint(ckpt_dir / "last.prev.pt")["step"] == 2
    raw = (ckpt_dir / "last.pt").read_bytes()
    (ckpt_dir / "last.pt").write_bytes(raw[: len(raw) // 2])
    capsys.readouterr()
    fit(parse_config(argv("cut")))
    out = capsys.readouterr()
    assert "resuming from" in out.err and "(step 2)" in out.err
    assert "resumed from" in out.out and "at step 2" in out.out
    a = load_checkpoint(tmp_path / "full" / "ckpt" / "last.pt")
    b = load_checkpoint(ckpt_dir / "last.pt")
    assert a["step"] == b["step"] == 4
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key


def test_checkpoint_of_another_config_names_the_difference(tiny_argv, tmp_path):
    fit(parse_config(tiny_argv))
    with pytest.raises(UserError, match="grid_res: checkpoint 12 vs config 16"):
        fit(parse_config(tiny_argv + ["--model_grid_res", "16"]))

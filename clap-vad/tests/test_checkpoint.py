"""Checkpoint contract: safe reading, last.pt / last.prev.pt rotation, fallback on a corrupt last.pt."""

import dataclasses

import pytest
import torch

from clap_vad import engine
from clap_vad.runtime import (
    CheckpointError,
    MissingPathError,
    load_checkpoint,
    resume_checkpoint,
    save_checkpoint,
)


def _state(step):
    return {"step": step, "config": {}, "model": {"w": torch.full((3,), float(step))}, "models": []}


def test_rotation_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "ckpt" / "last.pt"
    save_checkpoint(path, **_state(1))
    assert not (tmp_path / "ckpt/last.prev.pt").exists()
    save_checkpoint(path, **_state(2))
    assert load_checkpoint(path)["step"] == 2
    assert load_checkpoint(tmp_path / "ckpt/last.prev.pt")["step"] == 1
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["last.prev.pt", "last.pt"]


class _Evil:
    def __reduce__(self):
        return (print, ("never runs",))


@pytest.mark.parametrize("kind", ["text", "truncated", "random", "pickle", "version", "keys"])
def test_unreadable_files_are_checkpoint_errors(tmp_path, kind):
    good = tmp_path / "good.pt"
    save_checkpoint(good, **_state(1))
    bad = tmp_path / f"{kind}.pt"
    if kind == "text":
        bad.write_text("these are my notes\n")
    elif kind == "truncated":
        bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif kind == "random":
        bad.write_bytes(bytes(range(256)) * 8)
    elif kind == "pickle":
        torch.save({"format_version": 1, "evil": _Evil()}, bad)
    elif kind == "version":
        torch.save({"format_version": 99, **_state(1)}, bad)
    else:
        torch.save({"format_version": 1, "step": 1}, bad)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(bad)
    assert str(err.value).startswith(f"not a readable checkpoint of clap-vad: {bad}")
    assert "weights_only" not in str(err.value) and "\n" not in str(err.value)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(MissingPathError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "none.pt")


def test_resume_fallback_rules(tmp_path, capsys):
    ckpt = tmp_path / "ckpt"
    assert resume_checkpoint(ckpt) is None  # fresh start
    save_checkpoint(ckpt / "last.pt", **_state(1))
    save_checkpoint(ckpt / "last.pt", **_state(2))
    (ckpt / "last.pt").write_bytes(b"\x00" * 10)
    assert resume_checkpoint(ckpt)["step"] == 1
    warning = capsys.readouterr().err.strip()
    assert warning.startswith(f"warning: {ckpt / 'last.pt'} is not readable (")
    assert warning.endswith(f"resuming from {ckpt / 'last.prev.pt'} (step 1)")
    assert (ckpt / "last.corrupt.pt").exists() and not (ckpt / "last.pt").exists()
    (ckpt / "last.prev.pt").write_text("x")
    (ckpt / "last.pt").write_text("y")
    with pytest.raises(CheckpointError, match="neither"):
        resume_checkpoint(ckpt)


def test_truncated_last_resumes_from_previous_and_matches(tiny_cfg, tmp_path, capsys):
    """Saves at rounds 1 and 2; last.pt cut in half; the rerun reaches round 2 bit-identically."""
    full = dataclasses.replace(tiny_cfg, mode="local", steps=2, out_dir=str(tmp_path / "a"))
    engine.fit(full)
    cut = dataclasses.replace(full, out_dir=str(tmp_path / "b"))
    engine.fit(cut)
    last = tmp_path / "b/ckpt/last.pt"
    assert (tmp_path / "b/ckpt/last.prev.pt").exists()
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    capsys.readouterr()
    engine.fit(cut)
    assert "resuming from" in capsys.readouterr().err
    a = load_checkpoint(tmp_path / "a/ckpt/last.pt")
    b = load_checkpoint(last)
    assert a["step"] == b["step"] == 2
    for sa, sb in zip(a["models"], b["models"]):
        for k in sa:
            assert torch.equal(sa[k], sb[k]), k


def test_resume_with_another_config_names_the_difference(tiny_cfg, tmp_path):
    cfg = dataclasses.replace(tiny_cfg, mode="central", steps=1, out_dir=str(tmp_path / "r"))
    engine.fit(cfg)
    with pytest.raises(CheckpointError, match="model_hidden1: 32 -> 48"):
        engine.fit(dataclasses.replace(cfg, steps=2, model_hidden1=48))

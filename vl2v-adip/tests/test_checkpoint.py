"""Checkpoints (issue 23): write-then-rotate saving, fallback to last.prev.pt, and a run that
resumes after its last.pt was truncated and ends equal to the uninterrupted run."""

from __future__ import annotations

import pytest
import torch
from conftest import FAST, ROOT, TINY

from vl2v_adip.config import parse_config
from vl2v_adip.engine import fit
from vl2v_adip.runtime import (
    CheckpointError,
    load_checkpoint,
    resume_checkpoint,
    save_checkpoint,
)


def _train_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("train", ROOT / "train.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _state(step: int) -> dict:
    return {"step": step, "config": {}, "meta": {}, "w": torch.full((3,), float(step))}


def test_save_rotates_and_resume_falls_back(tmp_path, capsys):
    ckpt = tmp_path / "ckpt"
    assert resume_checkpoint(ckpt) is None  # fresh start
    save_checkpoint(ckpt / "last.pt", **_state(1))
    assert not (ckpt / "last.prev.pt").exists()
    save_checkpoint(ckpt / "last.pt", **_state(2))
    assert load_checkpoint(ckpt / "last.prev.pt")["step"] == 1
    assert not list(ckpt.glob("*.tmp"))
    assert resume_checkpoint(ckpt)["step"] == 2
    data = (ckpt / "last.pt").read_bytes()
    (ckpt / "last.pt").write_bytes(data[: len(data) // 2])
    assert resume_checkpoint(ckpt)["step"] == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"warning: {ckpt / 'last.pt'} is not readable (")
    assert err[0].endswith(f"resuming from {ckpt / 'last.prev.pt'} (step 1)")
    (ckpt / "last.pt").unlink()  # killed between the two renames: only last.prev.pt is left
    assert resume_checkpoint(ckpt)["step"] == 1
    (ckpt / "last.prev.pt").write_text("garbage")
    with pytest.raises(CheckpointError, match="neither"):
        resume_checkpoint(ckpt)


def test_load_checkpoint_refuses_foreign_files(tmp_path):
    torch.save({"format_version": 99, "step": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="format_version"):
        load_checkpoint(tmp_path / "other.pt")
    torch.save({"format_version": 1, "step": "x", "config": {}, "meta": {}}, tmp_path / "b.pt")
    with pytest.raises(CheckpointError, match="malformed keys \\['step'\\]"):
        load_checkpoint(tmp_path / "b.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="not a readable checkpoint of vl2v-adip"):
        load_checkpoint(tmp_path / "list.pt")


def test_truncated_last_resumes_from_previous_and_matches_uninterrupted(tmp_path, capsys):
    """Saves every step; the short run stops after step 4 (last.pt = 4, last.prev.pt = 3);
    last.pt is truncated, the full run resumes from step 3 (mid-Distill: optimizer state
    restored) and ends with the uninterrupted run's parameters."""
    base = ["--config", str(TINY), *FAST, "--save_every", "1"]
    full = fit(parse_config(base + ["--out_dir", str(tmp_path / "full")]))
    part = tmp_path / "part"
    fit(parse_config(base + ["--out_dir", str(part), "--steps", "2"]))
    last = part / "ckpt" / "last.pt"
    assert load_checkpoint(last)["step"] == 4
    assert load_checkpoint(part / "ckpt" / "last.prev.pt")["step"] == 3
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    capsys.readouterr()
    train = _train_script()  # probe case 7: train.py with the same arguments resumes
    resumed = train.main(base + ["--out_dir", str(part)])
    captured = capsys.readouterr()
    assert "resuming from" in captured.err and "(step 3)" in captured.err
    assert "resumed at step 3 (distill)" in captured.out
    assert resumed["steps_done"] == full["steps_done"] == 5
    a = load_checkpoint(tmp_path / "full" / "ckpt" / "last.pt")["model"]
    b = load_checkpoint(last)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["ood_acc"] == full["ood_acc"]


def test_resume_with_another_config_names_the_difference(tmp_path):
    base = ["--config", str(TINY), *FAST, "--out_dir", str(tmp_path / "run")]
    fit(parse_config(base + ["--steps", "1"]))
    with pytest.raises(CheckpointError, match="method: 'adip' -> 'kd'"):
        fit(parse_config(base + ["--method", "kd"]))
    with pytest.raises(CheckpointError, match="student_width=12"):  # its cached init
        fit(parse_config(base + ["--student_width", "12"]))

"""Checkpoints (issue 23): safe reads, the previous checkpoint kept while writing, resume with
fallback; and (issue 24) the optimizer built after the model is on its device."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from pathdino.engine import build_models, build_optimizer, fit, param_groups
from pathdino.runtime import (
    CheckpointError,
    load_checkpoint,
    resume_checkpoint,
    save_checkpoint,
)


def test_save_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "ckpt" / "last.pt"
    save_checkpoint(path, step=1)
    assert not (tmp_path / "ckpt" / "last.prev.pt").exists()
    save_checkpoint(path, step=2)
    assert load_checkpoint(path)["step"] == 2
    assert load_checkpoint(tmp_path / "ckpt" / "last.prev.pt")["step"] == 1
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.prev.pt", "last.pt"]


@pytest.mark.parametrize("content", [b"my notes\n", b"", b"PK\x03\x04garbage"])
def test_unreadable_checkpoints_are_refused_safely(tmp_path, content):
    path = tmp_path / "x.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a readable checkpoint of pathdino") as err:
        load_checkpoint(path)
    assert "weights_only" not in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"model": {}}, path)  # a torch file, but not ours
    with pytest.raises(CheckpointError, match="format_version"):
        load_checkpoint(path)


def test_resume_falls_back_to_the_previous_checkpoint(tmp_path, capsys):
    ckpt = tmp_path / "ckpt"
    assert resume_checkpoint(ckpt) is None
    save_checkpoint(ckpt / "last.pt", step=1)
    save_checkpoint(ckpt / "last.pt", step=2)
    assert resume_checkpoint(ckpt)["step"] == 2
    raw = (ckpt / "last.pt").read_bytes()
    (ckpt / "last.pt").write_bytes(raw[: len(raw) // 2])
    assert resume_checkpoint(ckpt)["step"] == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"warning: {ckpt / 'last.pt'} is not readable")
    assert err[0].endswith(f"resuming from {ckpt / 'last.prev.pt'} (step 1)")
    (ckpt / "last.prev.pt").write_text("broken too")
    with pytest.raises(CheckpointError, match="neither"):
        resume_checkpoint(ckpt)


def crash_at(monkeypatch, crash_step: int) -> None:
    """Make fit's train_step raise at `crash_step` (a run killed mid-way)."""
    from pathdino import engine

    real = engine.train_step

    def step(*args, **kwargs):
        if args[6] == crash_step:
            raise KeyboardInterrupt(f"killed at step {crash_step}")
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "train_step", step)


def test_truncated_last_checkpoint_resumes_to_the_uninterrupted_run(tiny_cfg, tmp_path, capsys,
                                                                      monkeypatch):
    """A run saving every step is killed at step 3 (last.pt = step 3, last.prev.pt = step 2);
    last.pt is cut to half its bytes (a crash during a copy, a full disk); the same command warns,
    resumes from last.prev.pt and ends with parameters equal to the uninterrupted run's."""
    full = dataclasses.replace(tiny_cfg, out_dir=str(tmp_path / "full"), steps=4, save_every=1)
    fit(full)
    part = dataclasses.replace(full, out_dir=str(tmp_path / "part"))
    with monkeypatch.context() as patch:
        crash_at(patch, 3)
        with pytest.raises(KeyboardInterrupt):
            fit(part)
    last = tmp_path / "part" / "ckpt" / "last.pt"
    assert load_checkpoint(last)["step"] == 3
    assert load_checkpoint(last.with_name("last.prev.pt"))["step"] == 2
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    capsys.readouterr()
    fit(part)
    captured = capsys.readouterr()
    assert "resuming from" in captured.err and "(step 2)" in captured.err
    assert "resumed from" in captured.out and "at step 2" in captured.out
    a = load_checkpoint(tmp_path / "full" / "ckpt" / "last.pt")
    b = load_checkpoint(last)
    assert a["step"] == b["step"] == 4
    for part_name in ("model", "student", "dino_loss"):
        for key in a[part_name]:
            assert torch.equal(a[part_name][key], b[part_name][key]), (part_name, key)


def test_resume_into_a_run_of_another_config_is_refused(tiny_cfg, tmp_path):
    first = dataclasses.replace(tiny_cfg, out_dir=str(tmp_path / "run"), steps=1)
    fit(first)
    with pytest.raises(CheckpointError, match="model_embed_dim 32 in the checkpoint vs 48"):
        fit(dataclasses.replace(first, steps=2, model_embed_dim=48))


def test_optimizer_state_follows_the_parameters_device(tiny_cfg):
    """Issue 24: the Adam moments must live where the parameters are. Building the optimizer
    after the model moved puts a loaded state on that device; shown with the `meta` device
    (the CPU cannot show a CPU/CUDA mismatch)."""
    student, _ = build_models(tiny_cfg)
    opt = torch.optim.AdamW(param_groups(student), lr=1e-3)
    student(_crops()).logsumexp(-1).mean().backward()
    opt.step()
    state = opt.state_dict()
    moved = student.to("meta")
    resumed = build_optimizer(moved, state)
    devices = {t.device.type for s in resumed.state.values() for t in s.values()
               if torch.is_tensor(t) and t.ndim > 0}
    assert devices == {"meta"}
    # the order the earlier code used (load on the CPU, move afterwards) leaves them behind
    student_cpu, _ = build_models(tiny_cfg)
    stale = build_optimizer(student_cpu, state)
    student_cpu.to("meta")
    assert {t.device.type for s in stale.state.values() for t in s.values()
            if torch.is_tensor(t) and t.ndim > 0} == {"cpu"}


def test_fit_moves_the_model_before_building_the_optimizer(tiny_cfg, tmp_path, monkeypatch):
    """The call order inside fit on a resume: student.to(device) before the optimizer loads."""
    from pathdino import engine

    run = dataclasses.replace(tiny_cfg, out_dir=str(tmp_path / "run"), steps=1)
    fit(run)
    events = []
    real_to = torch.nn.Module.to
    real_load = torch.optim.Optimizer.load_state_dict

    def to(self, *args, **kwargs):
        if isinstance(self, engine.MultiCropNet):
            events.append("model.to")
        return real_to(self, *args, **kwargs)

    def load(self, state):
        events.append("optimizer.load_state_dict")
        return real_load(self, state)

    monkeypatch.setattr(torch.nn.Module, "to", to)
    monkeypatch.setattr(torch.optim.Optimizer, "load_state_dict", load)
    fit(dataclasses.replace(run, steps=2))
    load = events.index("optimizer.load_state_dict")
    assert events[:load].count("model.to") == 2, events  # student and teacher moved first


def _crops():
    g = torch.Generator().manual_seed(0)
    return [torch.randn(2, 3, 32, 32, generator=g)] * 2 + [torch.randn(2, 3, 16, 16,
                                                                       generator=g)] * 2

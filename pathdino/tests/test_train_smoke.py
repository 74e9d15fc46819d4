import dataclasses

import pytest
import torch

from pathdino.engine import cosine_schedule, fit, train_step
from pathdino.runtime import load_checkpoint


def test_cosine_schedule_endpoints():
    assert cosine_schedule(0, 10, 1.0, 0.0, warmup=2) == 0.0
    assert cosine_schedule(2, 10, 1.0, 0.0, warmup=2) == 1.0
    assert abs(cosine_schedule(10, 10, 1.0, 0.1)) - 0.1 < 1e-12
    assert cosine_schedule(0, 10, 0.996, 1.0) == 0.996


def test_resume_reproduces_uninterrupted_run(tiny_cfg, tmp_path, monkeypatch):
    """Killed after step 2's checkpoint, resumed with the same command: bit-identical weights
    (the batch, its augmentations and the drop-path noise are functions of (seed, step))."""
    from test_checkpoint import crash_at

    full = dataclasses.replace(tiny_cfg, out_dir=str(tmp_path / "full"), steps=4, save_every=2)
    fit(full)
    part = dataclasses.replace(full, out_dir=str(tmp_path / "part"))
    with monkeypatch.context() as patch:
        crash_at(patch, 3)
        with pytest.raises(KeyboardInterrupt):
            fit(part)
    assert load_checkpoint(tmp_path / "part" / "ckpt" / "last.pt")["step"] == 2
    fit(part)  # resumes from part/ckpt/last.pt
    a = load_checkpoint(tmp_path / "full" / "ckpt" / "last.pt")
    b = load_checkpoint(tmp_path / "part" / "ckpt" / "last.pt")
    assert a["step"] == b["step"] == 4
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key


def test_dino_loss_falls_on_a_fixed_batch(tiny_cfg):
    """Tiny overfit: fixed teacher (momentum 1) and frozen centre, one fixed multi-crop batch; the
    student must fit the teacher's sharpened targets, so KL(P_t || P_s) falls by >= 10x."""
    from pathdino.engine import build_models, param_groups
    from pathdino.losses import DINOLoss

    torch.manual_seed(0)
    cfg = dataclasses.replace(tiny_cfg, steps=60, warmup_steps=0, lr=5e-3, min_lr=5e-3,
                              momentum_teacher=1.0, model_drop_path=0.0, clip_grad=0.0)
    student, teacher = build_models(cfg)
    loss_fn = DINOLoss(cfg.head_out_dim, 4, center_momentum=1.0)
    opt = torch.optim.AdamW(param_groups(student))
    g = torch.Generator().manual_seed(0)
    crops = [torch.randn(8, 3, 32, 32, generator=g)] * 2 + [torch.randn(8, 3, 16, 16,
                                                                        generator=g)] * 2
    logs = [train_step(student, teacher, loss_fn, crops, opt, cfg, s) for s in range(cfg.steps)]
    # cross-entropy = H(P_t) + KL(P_t || P_s); the fixed teacher's entropy is the floor
    kl = [m["loss"] - m["teacher_entropy"] for m in logs]
    assert kl[-1] < 0.1 * kl[0], kl[::10]


def test_non_finite_loss_raises(tiny_cfg):
    from pathdino.engine import build_models, param_groups
    from pathdino.losses import DINOLoss

    student, teacher = build_models(tiny_cfg)
    crops = [torch.full((2, 3, 32, 32), float("nan"))] * 2
    with pytest.raises(FloatingPointError, match="dino"):
        train_step(student, teacher, DINOLoss(64, 2), crops,
                   torch.optim.AdamW(param_groups(student)), tiny_cfg, 0)


def test_torchrun_ddp_single_process_matches_plain_run(tiny_cfg, tmp_path, monkeypatch):
    """The opt-in DDP path (as under torchrun, gloo on CPU) with one process equals a plain run."""
    import socket

    import torch.distributed as dist

    plain = dataclasses.replace(tiny_cfg, out_dir=str(tmp_path / "plain"), steps=2)
    fit(plain)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for key, value in {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0",
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}.items():
        monkeypatch.setenv(key, value)
    try:
        fit(dataclasses.replace(plain, out_dir=str(tmp_path / "ddp")))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    a = load_checkpoint(tmp_path / "plain" / "ckpt" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "ddp" / "ckpt" / "last.pt")["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], msg=key)

"""Training loop: DINO self-distillation of PathDino with HistoRotate multi-crop (Sec. 3).

Schedules follow the official script (DINO's `cosine_scheduler`), step-based here: learning rate
(linear warm-up, cosine to min_lr; base lr scaled by batch/256), weight decay (cosine 0.04 ->
0.4), teacher momentum (cosine 0.996 -> 1), teacher temperature (linear warm-up, then constant).
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import trange

from .augment import MultiCropAugmentation
from .config import Config, check_config, config_to_json
from .data import MultiCropDataset, StepBatchSampler, pretraining_sources
from .evaluation import knn_probe
from .losses import DINOLoss
from .model import MultiCropNet, ema_update
from .networks import ARCH, build_models, check_resumable, load_models, vit_config  # noqa: F401
from .runtime import (
    MetricsLogger,
    make_run_dir,
    resolve_device,
    resume_checkpoint,
    save_checkpoint,
    seed_everything,
    set_determinism,
)


def cosine_schedule(step: int, total: int, base: float, final: float, warmup: int = 0,
                    warmup_start: float = 0.0) -> float:
    """Linear warm-up from warmup_start to base over `warmup` steps, then cosine base -> final."""
    if step < warmup:
        return warmup_start + (base - warmup_start) * step / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return final + 0.5 * (base - final) * (1 + math.cos(math.pi * progress))


def teacher_temperature(step: int, cfg: Config) -> float:
    if step < cfg.warmup_teacher_temp_steps:
        frac = step / cfg.warmup_teacher_temp_steps
        return cfg.warmup_teacher_temp + frac * (cfg.teacher_temp - cfg.warmup_teacher_temp)
    return cfg.teacher_temp


def param_groups(model: torch.nn.Module) -> list[dict]:
    """No weight decay on biases and norm parameters (DINO `get_params_groups`)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if name.endswith(".bias") or p.ndim == 1 else decay).append(p)
    return [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]


def clip_gradients(model: torch.nn.Module, clip: float) -> None:
    """Per-parameter gradient norm clipping (DINO `clip_gradients`)."""
    for p in model.parameters():
        if p.grad is not None:
            norm = p.grad.norm(2)
            p.grad.mul_(torch.clamp(clip / (norm + 1e-6), max=1.0))


def train_step(student: MultiCropNet, teacher: MultiCropNet, loss_fn: DINOLoss,
               crops: list[torch.Tensor], optimizer: torch.optim.Optimizer, cfg: Config,
               step: int, student_forward: torch.nn.Module | None = None) -> dict[str, float]:
    """One DINO step: teacher sees the 2 global crops, student all crops; EMA update after.

    student_forward: the DDP wrapper of `student` when training with torchrun, else None.
    """
    for i, group in enumerate(optimizer.param_groups):
        group["lr"] = cosine_schedule(step, cfg.steps, cfg.lr * cfg.batch_size / 256.0,
                                      cfg.min_lr, cfg.warmup_steps)
        if i == 0:
            group["weight_decay"] = cosine_schedule(step, cfg.steps, cfg.weight_decay,
                                                    cfg.weight_decay_end)
    temp = teacher_temperature(step, cfg)
    with torch.no_grad():
        teacher_logits = teacher(crops[:2])  # [2B, K]
    student_logits = (student_forward or student)(crops)  # [V B, K]
    loss = loss_fn(student_logits, teacher_logits, temp)
    if not torch.isfinite(loss):
        raise FloatingPointError(f"non-finite loss at step {step}: {{'dino': {loss.item()}}}")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.clip_grad > 0:
        clip_gradients(student, cfg.clip_grad)
    if step < cfg.freeze_last_layer_steps:
        for p in (student.head.last_v, student.head.last_g):
            p.grad = None
    optimizer.step()
    momentum = cosine_schedule(step, cfg.steps, cfg.momentum_teacher, 1.0)
    ema_update(teacher, student, momentum)
    with torch.no_grad():  # collapse monitors: sharp per image (low) yet diverse (high mean)
        p_t = torch.softmax((teacher_logits - loss_fn.center) / temp, -1)  # [2B, K]
        entropy = -(p_t * torch.log(p_t + 1e-12)).sum(-1).mean()
        p_mean = p_t.mean(0)  # [K]
        mean_entropy = -(p_mean * torch.log(p_mean + 1e-12)).sum()
    return {"loss": loss.item(), "lr": optimizer.param_groups[0]["lr"],
            "momentum": momentum, "teacher_entropy": entropy.item(),
            "teacher_mean_entropy": mean_entropy.item()}


def build_optimizer(student: torch.nn.Module, state: dict | None = None
                    ) -> torch.optim.Optimizer:
    """AdamW over the student's parameters, with a saved state when resuming.

    Call it after the student is on its device: load_state_dict casts the state (Adam moments)
    to the device of the parameters at that moment, so building it on the CPU and moving the
    model afterwards leaves the moments on the CPU and the first CUDA step fails.
    """
    optimizer = torch.optim.AdamW(param_groups(student), lr=0.0)
    if state is not None:
        optimizer.load_state_dict(state)
    return optimizer


def _save(path: Path, step: int, cfg: Config, student, teacher, optimizer, loss_fn) -> None:
    save_checkpoint(path, arch=ARCH, step=step, config=dataclasses.asdict(cfg),
                    model=teacher.state_dict(), student=student.state_dict(),
                    optimizer=optimizer.state_dict(), dino_loss=loss_fn.state_dict())


def _init_distributed(device: torch.device) -> tuple[int, torch.device]:
    """Opt-in DDP when launched by torchrun (RANK/WORLD_SIZE set): returns (rank, device);
    (-1, device) in a plain single process."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return -1, device
    import torch.distributed as dist

    # DIST_BACKEND overrides the default (nccl on CUDA, gloo on CPU): NCCL refuses two ranks on
    # one GPU, so a one-GPU multi-process check runs gloo with CUDA tensors
    backend = os.environ.get("DIST_BACKEND") or ("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":  # ranks beyond the GPU count share GPUs (one-GPU checks)
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return dist.get_rank(), device


def fit(cfg: Config) -> dict:
    """Train; returns final metrics and the run folder. Resumes from <out_dir>/ckpt/last.pt."""
    check_config(cfg)
    seed_everything(cfg.seed)
    set_determinism(cfg.deterministic)
    rank, device = _init_distributed(resolve_device(cfg.device))
    main_process = rank <= 0
    run_dir = _shared_run_dir(cfg, rank)
    if main_process:
        (run_dir / "config.json").write_text(config_to_json(cfg))
        print(config_to_json(cfg))
    sources = pretraining_sources(cfg.data_name, cfg.data_root, cfg.data_num_train,
                                  cfg.data_source_size, cfg.data_num_classes,
                                  cfg.data_orientation_bias_deg, cfg.seed)
    augment = MultiCropAugmentation(cfg.global_crop_size, cfg.local_crop_size,
                                    cfg.local_crops_number, cfg.global_crops_scale,
                                    cfg.local_crops_scale, cfg.historotate,
                                    cfg.historotate_large_side, cfg.historotate_large_crop,
                                    cfg.historotate_large_crop_scale)
    student, teacher = build_models(cfg)
    loss_fn = DINOLoss(cfg.head_out_dim, 2 + cfg.local_crops_number, cfg.student_temp,
                       cfg.center_momentum)
    start, optimizer_state = 0, None
    last = run_dir / "ckpt" / "last.pt"
    ckpt = resume_checkpoint(last.parent)  # last.pt, else last.prev.pt (with a warning)
    if ckpt is not None:
        check_resumable(cfg, ckpt, str(last))
        _, student, teacher = load_models(ckpt, str(run_dir / "ckpt"))
        loss_fn.load_state_dict(ckpt["dino_loss"])
        optimizer_state, start = ckpt["optimizer"], int(ckpt["step"])
        print(f"[fit] resumed from {run_dir / 'ckpt'} at step {start}")
    # model first, optimizer second: the loaded Adam moments follow the parameters' device
    student, teacher, loss_fn = student.to(device), teacher.to(device), loss_fn.to(device)
    optimizer = build_optimizer(student, optimizer_state)
    student_forward = None
    if rank >= 0:  # torchrun: gradients all-reduced by DDP, centre by DINOLoss
        student_forward = torch.nn.parallel.DistributedDataParallel(
            student, device_ids=[device.index] if device.type == "cuda" else None)
    loader = DataLoader(MultiCropDataset(sources, augment), num_workers=cfg.num_workers,
                        batch_sampler=StepBatchSampler(len(sources), cfg.batch_size,
                                                       cfg.seed + 1_000_003 * max(rank, 0),
                                                       start, cfg.steps),
                        pin_memory=device.type == "cuda")
    logger = MetricsLogger(run_dir if main_process else run_dir / f"rank{rank}",
                           wandb=cfg.wandb and main_process, config=dataclasses.asdict(cfg))
    metrics: dict[str, float] = {}
    bar = trange(start, cfg.steps, desc="pathdino", disable=os.environ.get("TQDM_DISABLE") == "1")
    for step, crops in zip(bar, loader):
        torch.manual_seed(cfg.seed * 100_003 + step)  # drop-path noise: a function of the step
        crops = [c.to(device, non_blocking=True) for c in crops]
        student.train()
        metrics = train_step(student, teacher, loss_fn, crops, optimizer, cfg, step,
                             student_forward)
        if device.type == "cuda":  # peak memory of the run so far (smoke.py reads it)
            metrics["cuda_max_mem_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
        if step % cfg.log_every == 0 or step == cfg.steps - 1:
            logger.log(step, progress=bar, **metrics)
        if cfg.eval_every and main_process and (step % cfg.eval_every == 0
                                                or step == cfg.steps - 1):
            logger.log(step, split="eval", **knn_probe(cfg, teacher.backbone, device))
        if main_process and (step + 1) % cfg.save_every == 0 and step + 1 < cfg.steps:
            _save(last, step + 1, cfg, student, teacher, optimizer, loss_fn)
    if rank >= 0:  # DDP must have kept the replicas identical
        _check_replicas(student, "student")
        _check_replicas(teacher, "teacher")
    if main_process:
        _save(last, max(start, cfg.steps), cfg, student, teacher, optimizer, loss_fn)
    logger.close()
    if rank >= 0:
        torch.distributed.barrier()  # no rank exits before the checkpoint is written
    return {**metrics, "step": cfg.steps, "run_dir": str(run_dir)}


def _shared_run_dir(cfg: Config, rank: int) -> Path:
    """The run folder, created by rank 0 and shared with the others under torchrun."""
    if rank < 0:
        return make_run_dir(cfg.out_dir, cfg.config_name)
    box = [str(make_run_dir(cfg.out_dir, cfg.config_name)) if rank == 0 else None]
    torch.distributed.broadcast_object_list(box, src=0)
    return Path(box[0])


def _check_replicas(module: torch.nn.Module, name: str) -> None:
    """Raise if this rank's weights differ from rank 0's (a synchronisation bug)."""
    flat = torch.cat([p.detach().flatten() for p in module.parameters()])
    ref = flat.clone()
    torch.distributed.broadcast(ref, src=0)
    diff = (flat - ref).abs().max().reshape(1)
    torch.distributed.all_reduce(diff, op=torch.distributed.ReduceOp.MAX)
    if float(diff) > 1e-6:
        raise RuntimeError(f"{name} weights differ across ranks (max |diff| {float(diff):.3g})")

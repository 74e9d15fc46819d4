"""Training loop: train_step(), fit(cfg) -> dict. Evaluation lives in `evaluation.py`."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import torch
from tqdm import trange

from .config import Config, config_to_json
from .data import batch_indices, binarize, load_split
from .distributed import Dist, init_distributed
from .evaluation import evaluate, load_model, quick_eval, train_images  # noqa: F401 (re-exported)
from .factory import ARCH_FIELDS, build_model
from .losses import elbo_loss, free_nats_schedule, kl_beta, rl_loss
from .runtime import (
    CheckpointError,
    MetricsLogger,
    make_run_dir,
    resume_checkpoint,
    rng_state,
    save_checkpoint,
    seed_everything,
    set_determinism,
    set_rng_state,
)


class LossModule(torch.nn.Module):
    """The objective of one update as a forward(), so DistributedDataParallel can wrap it."""

    def __init__(self, model: torch.nn.Module, cfg: Config) -> None:
        super().__init__()
        self.model, self.cfg = model, cfg

    def forward(self, x: torch.Tensor, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """For `rl`, update `step` is decision step t = step mod L on its batch (the official
        loop makes L updates per batch, t = 0..L-1)."""
        beta = kl_beta(step, self.cfg.kl_warmup_steps)
        free_nats = free_nats_schedule(step, self.cfg.free_nats, self.cfg.free_nats_steps)
        if self.cfg.method == "rl":
            loss, stats = rl_loss(self.model, x, step % self.model.n_levels, self.cfg.rl_gamma,
                                  beta, free_nats)
        else:
            loss, stats = elbo_loss(self.model, x, beta, free_nats)
        return loss, {"loss": loss.item(), "beta": beta, "free_nats": free_nats, **stats}

    def wrap(self, world: int, device: torch.device) -> torch.nn.Module:
        """DDP under torchrun; parameters unused by a step (e.g. levels below the RL decision
        step) are allowed."""
        if world == 1:
            return self
        return torch.nn.parallel.DistributedDataParallel(
            self, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True)


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
               step: int, cfg: Config, objective: torch.nn.Module | None = None,
               sync: Dist | None = None) -> dict[str, float]:
    """One optimiser update on x (this rank's rows of the batch). `objective` is the
    (DDP-wrapped) LossModule under torchrun; `sync` averages the logged values over ranks."""
    model.train()
    loss, stats = (objective or LossModule(model, cfg))(x, step)
    stats = sync.mean(stats) if sync else stats  # identical on all ranks: NaN stops every rank
    if not math.isfinite(stats["loss"]):
        raise FloatingPointError(f"non-finite loss at step {step}: {stats['loss']} ({stats}); "
                                 "lower lr or set grad_clip")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    optimizer.step()
    return stats


def _norm(v):
    return tuple(v) if isinstance(v, list) else v


def _check_compatible(saved: dict, cfg: Config, path: str) -> None:
    diff = {k: (saved.get(k), getattr(cfg, k)) for k in ARCH_FIELDS
            if _norm(saved.get(k)) != _norm(getattr(cfg, k))}
    if diff:
        raise CheckpointError(f"checkpoint {path} was written by another architecture "
                              f"(saved vs. requested: {diff})",
                              "use another out_dir or the matching config")


def _batch(train_x: torch.Tensor, cfg: Config, step: int, n_levels: int) -> torch.Tensor:
    """The global batch of update `step` (rl: the same batch for the L decision steps)."""
    b = step // n_levels if cfg.method == "rl" else step
    x = train_x[batch_indices(len(train_x), cfg.batch_size, b, cfg.seed)]
    if cfg.data_binarize and cfg.data_binarization == "fresh":
        return binarize(x, cfg.seed * 1_000_003 + b)  # dynamic binarisation: new per batch
    return x if cfg.data_binarize else torch.round(x * 255) / 255


def fit(cfg: Config) -> dict:
    """Train per `cfg` (one process, or every rank under torchrun); resumes from the newest
    readable of <out_dir>/ckpt/last.pt and last.prev.pt. Returns final metrics."""
    sync = init_distributed(cfg.device)
    part = sync.part(cfg.batch_size)
    seed_everything(cfg.seed)
    device = sync.device
    set_determinism(cfg.deterministic, device)
    train = load_split(cfg.data_name, cfg.data_root, "train", cfg.data_val_fraction, cfg.seed)
    val = load_split(cfg.data_name, cfg.data_root, "val", cfg.data_val_fraction, cfg.seed)
    train_x = train_images(train, cfg)  # cached binarisation, drawn once per run
    model = build_model(cfg, train).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    run_dir = Path(sync.share(str(make_run_dir(cfg.out_dir, cfg.config_name)) if sync.main
                              else None))
    ckpt = resume_checkpoint(run_dir / "ckpt")
    if ckpt is None:  # data-dependent init on the first global batch, identical on all ranks
        model.data_init(_batch(train_x, cfg, 0, model.n_levels).to(device))
        if sync.rank:  # own latent samples per rank (DDP copies rank 0's initial weights)
            torch.manual_seed(cfg.seed + sync.rank)
    start = 0 if ckpt is None else _resume(ckpt, cfg, model, optimizer, sync, run_dir)
    objective = LossModule(model, cfg).wrap(sync.world, device)
    logger = None
    if sync.main:
        (run_dir / "config.json").write_text(config_to_json(cfg))
        print(config_to_json(cfg))
        logger = MetricsLogger(run_dir, wandb=cfg.wandb, config=dataclasses.asdict(cfg))

    saved = [start if ckpt else -1]  # the step of the newest checkpoint on disk

    def save(step: int) -> None:
        saved[0] = step
        sync.check_consistent(model)
        rng = sync.gather(rng_state(device))
        if sync.main:
            save_checkpoint(run_dir / "ckpt" / "last.pt", step=step, config=dataclasses.asdict(cfg),
                            model=model.state_dict(), optimizer=optimizer.state_dict(),
                            rng_ranks=rng)
        sync.barrier()

    stats: dict[str, float] = {}
    bar = trange(start, cfg.steps, desc=f"train[{cfg.method}]", dynamic_ncols=True,
                 disable=not sync.main)
    for step in bar:
        x = _batch(train_x, cfg, step, model.n_levels)[part]
        stats = train_step(model, optimizer, x.to(device), step, cfg, objective, sync)
        if device.type == "cuda":
            stats["cuda_max_mem_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
        if logger and (step % cfg.log_every == 0 or step == cfg.steps - 1):
            logger.log(step, "train", progress=bar, **stats)
        if logger and cfg.eval_every and (step + 1) % cfg.eval_every == 0 and step + 1 < cfg.steps:
            logger.log(step + 1, "val", **quick_eval(model, val, cfg, device))
        if cfg.save_every and (step + 1) % cfg.save_every == 0:
            save(step + 1)
    final = quick_eval(model, val, cfg, device)
    if logger:
        logger.log(cfg.steps, "val", **final)
        logger.close()
    if saved[0] != max(cfg.steps, start):
        save(max(cfg.steps, start))  # not twice: last.prev.pt keeps the previous save
    sync.close()
    return {"run_dir": str(run_dir), "steps": max(cfg.steps, start),
            **{f"train_{k}": v for k, v in stats.items()},
            **{f"val_{k}": v for k, v in final.items()}}


def _resume(ckpt: dict, cfg: Config, model, optimizer, sync: Dist, run_dir: Path) -> int:
    """Weights, optimiser and this rank's RNG states from `ckpt`; returns its step."""
    where = str(run_dir / "ckpt")
    _check_compatible(ckpt["config"], cfg, where)
    try:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
    except (RuntimeError, ValueError, KeyError) as err:
        raise CheckpointError(f"checkpoint in {where} does not fit this model "
                              f"({str(err).splitlines()[0]})", "another version of the code?"
                              ) from None
    states = ckpt.get("rng_ranks") or []
    if len(states) == sync.world:
        set_rng_state(states[sync.rank], sync.device)
    else:  # the number of processes changed: continue, not bit-identically
        torch.manual_seed(cfg.seed + 1000 * ckpt["step"] + sync.rank)
    print(f"resuming from {where} at step {ckpt['step']}")
    return int(ckpt["step"])

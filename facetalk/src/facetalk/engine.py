"""Training loop, sampling and evaluation for FaceTalk (Sec. 3-4).

Shapes: B batch, T frames, E expression-code size, I identity-code size, K samples, V vertices.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import torch
from tqdm import trange

from . import metrics as M
from .audio import frame_energy
from .config import Config, config_from_dict, config_to_json
from .data import make_sequences, sample_batch
from .diffusion import make_scheduler, q_sample, sample, x0_from_eps
from .distributed import init_distributed
from .head import build_head, mouth_opening
from .losses import lip_vertex_loss, reconstruction_loss, velocity_loss
from .model import FaceTalkModel, build_model
from .runtime import (
    CheckpointError,
    ConfigError,
    MetricsLogger,
    UserError,
    cuda_memory_record,
    load_checkpoint,
    make_run_dir,
    resolve_device,
    resume_checkpoint,
    save_checkpoint,
    seed_everything,
    set_determinism,
)

KIND = "facetalk"


def lr_factor(step: int, warmup: int) -> float:
    """Linear warm-up to 1, then constant."""
    return min(1.0, (step + 1) / max(1, warmup))


def _randn(shape, gen: torch.Generator, device) -> torch.Tensor:
    return torch.randn(shape, generator=gen).to(device)


def loss_terms(model: FaceTalkModel, scheduler, batch: dict, cfg: Config, head,
               gen: torch.Generator) -> dict[str, torch.Tensor]:
    """All loss terms for one batch (keys: loss, simple, vel, lip)."""
    device = batch["codes"].device
    x0 = model.normalize(batch["codes"])  # [B, T, E]
    b, frames, _ = x0.shape
    audio = model.audio_encoder(batch["audio"], frames)  # [B, T, D]
    if cfg.method == "diffusion":
        if "t" not in batch:  # not pre-drawn by _batch (validation batches)
            batch = {**batch, **draw_noise(cfg, batch["codes"].shape, gen, device)}
        t, noise, drop = batch["t"], batch["noise"], batch["drop"]
        x_t = q_sample(scheduler, x0, noise, t)
        out = model.denoiser(x_t, t, audio, batch["id_code"], drop)
        if cfg.diff_prediction == "sample":
            x0_hat, simple = out, reconstruction_loss(out, x0)
        else:
            x0_hat = x0_from_eps(scheduler.alphas_cumprod, x_t, out, t)
            simple = reconstruction_loss(out, noise)
    else:  # deterministic regression baseline: same network, no noise input, t = 0
        zeros_t = torch.zeros(b, dtype=torch.long, device=device)
        x0_hat = model.denoiser(torch.zeros_like(x0), zeros_t, audio, batch["id_code"], None)
        simple = reconstruction_loss(x0_hat, x0)
    terms = {"simple": simple, "vel": velocity_loss(x0_hat, x0)}
    if cfg.loss_lip_weight > 0:
        pred_v = head(model.denormalize(x0_hat), batch["id_code"])
        terms["lip"] = lip_vertex_loss(pred_v, head(batch["codes"], batch["id_code"]),
                                       head.lip_indices)
    terms["loss"] = (simple + cfg.loss_vel_weight * terms["vel"]
                     + cfg.loss_lip_weight * terms.get("lip", simple.new_zeros(())))
    return terms


def draw_noise(cfg: Config, shape, gen: torch.Generator, device) -> dict[str, torch.Tensor]:
    """Diffusion step t [B], noise [B, T, E] and classifier-free-guidance drop mask [B]."""
    b = shape[0]
    return {"t": torch.randint(0, cfg.diff_train_steps, (b,), generator=gen).to(device),
            "noise": _randn(shape, gen, device),
            "drop": (torch.rand(b, generator=gen) < cfg.diff_cond_drop).to(device)}


class _LossModule(torch.nn.Module):
    """loss_terms as a forward(), so DistributedDataParallel can wrap the trainable model."""

    def __init__(self, model: FaceTalkModel, scheduler, cfg: Config, head) -> None:
        super().__init__()
        self.model, self.head, self.scheduler, self.cfg = model, head, scheduler, cfg

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        return loss_terms(self.model, self.scheduler, batch, self.cfg, self.head, None)

    def wrap(self, world: int, device: torch.device) -> torch.nn.Module:
        """DDP under torchrun. Some parameters can miss a step's graph: the null-audio token in
        the regression baseline, and wav2vec 2.0 layers skipped by LayerDrop when the encoder
        is fine-tuned, so unused parameters are allowed."""
        if world == 1:
            return self
        return torch.nn.parallel.DistributedDataParallel(
            self, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True)


def _set_code_stats(model: FaceTalkModel, seqs) -> None:
    codes = torch.from_numpy(np.concatenate([s.codes for s in seqs]))
    model.code_mean.copy_(codes.mean(0))
    model.code_std.copy_(codes.std(0).clamp_min(1e-2))


def _batch(seqs, cfg: Config, step: int, device, part: slice | None = None,
           noise: bool = True) -> dict[str, torch.Tensor]:
    """Batch of `step` with its diffusion noise, a pure function of (seed, step): resume is
    exact. The global batch is drawn on every rank and `part` keeps this rank's rows, so N
    processes train on exactly the batches one process would."""
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
    batch = sample_batch(seqs, cfg.batch_size, cfg.data_clip_frames, cfg.data_sample_rate,
                         cfg.data_fps, gen)
    if noise and cfg.method == "diffusion":
        batch.update(draw_noise(cfg, batch["codes"].shape, gen, "cpu"))
    part = part or slice(None)
    return {k: v[part].to(device) for k, v in batch.items()}


def fit(cfg: Config) -> dict:
    """Train (one process, or every rank under torchrun); returns the final metrics dict.
    Resumes from <out_dir>/ckpt/last.pt if present."""
    sync = init_distributed(cfg.device)
    part = sync.part(cfg.batch_size)
    seed_everything(cfg.seed)
    set_determinism(cfg.deterministic)
    device = sync.device
    run_dir = Path(sync.share(str(make_run_dir(cfg.out_dir, cfg.config_name)) if sync.main
                              else None))
    if sync.main:
        (run_dir / "config.json").write_text(config_to_json(cfg))
        print(config_to_json(cfg))
    train_seqs = make_sequences(cfg, "train")
    model = build_model(cfg).to(device)
    _set_code_stats(model, train_seqs)
    head = build_head(cfg.head_name, cfg.data_id_dim, cfg.data_exp_dim, cfg.head_resolution,
                      cfg.head_path).to(device)
    scheduler = make_scheduler("ddpm", cfg.diff_train_steps, cfg.diff_beta_schedule,
                               cfg.diff_prediction)
    last = run_dir / "ckpt" / "last.pt"
    params, optimizer, lr_sched, start = _optimizer(cfg, model, last)
    train_module = _LossModule(model, scheduler, cfg, head).wrap(sync.world, device)
    logger = MetricsLogger(run_dir, cfg.wandb, dataclasses.asdict(cfg), project=KIND) \
        if sync.main else None
    val_batch = _batch(make_sequences(cfg, "val"), cfg, 0, device, noise=False)
    record: dict = {}
    bar = trange(start, cfg.steps, desc=f"train {cfg.method}",
                 disable=cfg.steps - start < 2 or not sync.main)
    for step in bar:
        train_module.train()
        batch = _batch(train_seqs, cfg, step, device, part)
        terms = train_module(batch)
        values = sync.mean({k: float(v.detach()) for k, v in terms.items()})
        if not all(math.isfinite(v) for v in values.values()):
            raise FloatingPointError(f"non-finite loss at step {step}: {values}")
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()  # DDP averages the gradients over ranks here
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        optimizer.step()
        lr_sched.step()
        done = step + 1
        if logger and (done % cfg.log_every == 0 or done == cfg.steps):
            logger.log(done, "train", progress=bar, lr=lr_sched.get_last_lr()[0], **values,
                       **cuda_memory_record(device))
            record = {f"train_{k}": v for k, v in values.items()}
        if logger and ((cfg.eval_every and done % cfg.eval_every == 0) or done == cfg.steps):
            record.update(val_loss(model, scheduler, val_batch, cfg, head, logger, done))
        if done % cfg.save_every == 0 or done == cfg.steps:
            if sync.main:
                _save(last, model, optimizer, lr_sched, cfg, done)
            sync.barrier()
    if start >= cfg.steps and not last.is_file() and sync.main:
        _save(last, model, optimizer, lr_sched, cfg, start)
    if logger:
        logger.close()
    sync.close()
    return {"step": cfg.steps, "run_dir": str(run_dir), **record}


def _optimizer(cfg: Config, model: FaceTalkModel, last: Path):
    """(trainable params, AdamW, warm-up schedule, start step), restored from `last` if present."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    lr_sched = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg.lr_warmup))
    start = 0
    ckpt = resume_checkpoint(last.parent)  # last.pt, else last.prev.pt (warns), else None
    if ckpt is not None:
        _load_weights(model, ckpt, last)
        optimizer.load_state_dict(ckpt["optimizer"])
        lr_sched.load_state_dict(ckpt["lr_scheduler"])
        start = int(ckpt["step"])
        print(f"resumed from {last.parent} at step {start}")
    return params, optimizer, lr_sched, start


@torch.no_grad()
def val_loss(model, scheduler, batch, cfg, head, logger, step) -> dict:
    """Loss on a fixed held-out batch with fixed noise (comparable across steps)."""
    model.eval()
    terms = loss_terms(model, scheduler, batch, cfg, head, torch.Generator().manual_seed(1234))
    values = {k: float(v.detach()) for k, v in terms.items()}
    logger.log(step, "val", **values)
    return {f"val_{k}": v for k, v in values.items()}


def _save(path, model, optimizer, lr_sched, cfg, step) -> None:
    save_checkpoint(path, kind=KIND, step=step, config=dataclasses.asdict(cfg),
                    model=model.state_dict(), optimizer=optimizer.state_dict(),
                    lr_scheduler=lr_sched.state_dict())


def _load_weights(model: torch.nn.Module, ckpt: dict, path) -> None:
    """Strict load; a checkpoint of another subproject or config is a CheckpointError."""
    if ckpt.get("kind") != KIND:
        raise CheckpointError(f"{path} is not a {KIND} checkpoint (kind={ckpt.get('kind')!r})",
                              "pass <run>/ckpt/last.pt of a facetalk run")
    try:
        model.load_state_dict(ckpt["model"], strict=True)
    except (RuntimeError, KeyError, TypeError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise CheckpointError(f"{path} was written by a different architecture than this "
                              "config builds", f"checkpoint of another config? {first}") from err


def _load_into(model: torch.nn.Module, path) -> dict:
    ckpt = load_checkpoint(path)
    _load_weights(model, ckpt, path)
    return ckpt


def load_model(ckpt_path: str | Path, device="cpu") -> tuple[FaceTalkModel, Config]:
    """Rebuild the model from the checkpoint's own config and load its weights (strict)."""
    ckpt = load_checkpoint(ckpt_path)
    if ckpt.get("kind") != KIND:
        _load_weights(torch.nn.Module(), ckpt, ckpt_path)  # raises the kind error
    try:
        cfg = config_from_dict(ckpt["config"], where=str(ckpt_path))
    except (ConfigError, KeyError, TypeError) as err:
        raise CheckpointError(f"{ckpt_path}: its config does not describe a model",
                              str(err)[:200]) from err
    model = build_model(cfg)
    _load_weights(model, ckpt, ckpt_path)
    return model.to(device).eval(), cfg


@torch.no_grad()
def generate(model: FaceTalkModel, cfg: Config, wave: torch.Tensor, id_code: torch.Tensor,
             frames: int, num_samples: int, seed: int = 0, sampler: str | None = None,
             steps: int | None = None, guidance: float | None = None) -> torch.Tensor:
    """K expression-code sequences for one clip: wave [S], id_code [I] -> [K, T, E] (raw codes)."""
    device = next(model.parameters()).device
    audio = model.audio_encoder(wave[None].to(device), frames).expand(num_samples, -1, -1)
    ids = id_code[None].to(device).expand(num_samples, -1)
    if cfg.method == "regression":
        # One deterministic prediction, repeated K times (a batched call can differ in the
        # last float bit between rows, and the baseline has a single output by definition).
        zeros_t = torch.zeros(1, dtype=torch.long, device=device)
        x0 = model.denoiser(torch.zeros(1, frames, cfg.data_exp_dim, device=device),
                            zeros_t, audio[:1], ids[:1], None)
        return model.denormalize(x0).repeat(num_samples, 1, 1)
    scale = cfg.diff_guidance if guidance is None else guidance
    scheduler = make_scheduler(sampler or cfg.diff_sampler, cfg.diff_train_steps,
                               cfg.diff_beta_schedule, cfg.diff_prediction)
    x0 = sample(lambda x, t: model.guided(x, t, audio, ids, scale),
                (num_samples, frames, cfg.data_exp_dim), scheduler,
                steps or cfg.diff_sample_steps, torch.Generator().manual_seed(seed), device)
    return model.denormalize(x0)


@torch.no_grad()
def evaluate(ckpt_path: str | Path, out_dir: str | Path | None = None, split: str = "test",
             figures: bool = True, device: str = "cpu") -> dict:
    """Sample K motions per held-out clip (on `device`), decode meshes (CPU), score
    LVE/FDD/diversity/lip-sync."""
    model, cfg = load_model(ckpt_path, resolve_device(device))
    head = build_head(cfg.head_name, cfg.data_id_dim, cfg.data_exp_dim, cfg.head_resolution,
                      cfg.head_path)
    seqs = make_sequences(cfg, split)
    out_dir = Path(out_dir) if out_dir else Path(ckpt_path).resolve().parent.parent / "eval"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot write the evaluation folder {out_dir}: {err.strerror or err}",
                        "pass --out_dir") from err
    rows, first = [], None
    for i, seq in enumerate(seqs):
        # clips are scored over the training window length (the denoiser's positions and
        # attention span were trained on data_clip_frames frames)
        frames = min(len(seq.codes), cfg.data_clip_frames)
        spf = cfg.data_sample_rate // cfg.data_fps
        gt_codes, id_code = torch.from_numpy(seq.codes[:frames]), torch.from_numpy(seq.id_code)
        wave = torch.from_numpy(seq.audio[: frames * spf])
        codes = generate(model, cfg, wave, id_code, frames, cfg.eval_samples, seed=i).cpu()
        verts = head(codes, id_code[None].expand(len(codes), -1))  # [K, T, V, 3]
        gt_v = head(gt_codes[None], id_code[None])[0]  # [T, V, 3]
        neutral = head.neutral(id_code[None])[0]
        energy = frame_energy(wave, cfg.data_sample_rate, cfg.data_fps)[:frames]
        lves = [M.lip_vertex_error(v, gt_v, head.lip_indices) for v in verts]
        rows.append({
            "lve": float(np.mean(lves)), "lve_best": float(np.min(lves)),
            "fdd": M.fdd(verts[0], gt_v, neutral, head.upper_indices),
            "diversity": M.diversity(verts) if len(verts) > 1 else 0.0,
            "lipsync_corr": M.pearson(energy, mouth_opening(verts[0], head.mouth_pair)),
            "lipsync_corr_gt": M.pearson(energy, mouth_opening(gt_v, head.mouth_pair)),
        })
        if first is None:
            first = (energy, gt_v, verts, head.faces)
    result = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    result.update(method=cfg.method, split=split, sequences=len(rows), samples=cfg.eval_samples,
                  sampler=cfg.diff_sampler, sample_steps=cfg.diff_sample_steps,
                  guidance=cfg.diff_guidance)
    (out_dir / f"{split}.json").write_text(json.dumps(result, indent=2))
    if figures:
        from .visualize import save_figures

        save_figures(out_dir, *first, fps=cfg.data_fps, mouth_pair=head.mouth_pair,
                     render=cfg.eval_render, colors=head.vertex_colors.numpy())
    return result

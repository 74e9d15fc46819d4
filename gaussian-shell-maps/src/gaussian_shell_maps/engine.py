"""Training loop (StyleGAN2/EG3D schedule as in the official code) and evaluation entry point.

One step = G phase (non-saturating loss + face D term + scale/opacity regularisers), D phase
(logistic loss on real/fake, face D on head crops), lazy R1 every `r1_interval` D steps (on the
full images and the face crops), then the G_ema update with the official ramp-up.
Under torchrun each rank trains on batch_size / world_size images and gradients are averaged
over ranks after each phase (distributed.py).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from tqdm import trange

from . import losses as L
from .builders import (  # noqa: F401 (gsm_config re-exported)
    build_dataset,
    build_models,
    check_sources,
    gsm_config,
)
from .config import Config, config_from_dict, config_to_json
from .distributed import Dist, init_distributed
from .model import crop_boxes
from .render import resolve_backend
from .runtime import (
    CheckpointError,
    ConfigError,
    MetricsLogger,
    UserError,
    load_checkpoint,
    make_run_dir,
    resolve_device,
    resume_checkpoint,
    seed_everything,
    set_determinism,
)
from .state import (  # noqa: F401 (capture_rng re-exported for tests and tools)
    ARCH,
    _check_same_config,
    _load_state,
    _save,
    capture_rng,
    restore_rng,
)


def make_optimizers(cfg: Config, gen, disc):
    # lazy R1: StyleGAN2 rescales D's lr and betas by interval / (interval + 1)
    ratio = cfg.r1_interval / (cfg.r1_interval + 1) if cfg.r1_gamma > 0 else 1.0
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.g_lr, betas=(0.0, 0.99), eps=1e-8)
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.d_lr * ratio, betas=(0.0, 0.99 ** ratio),
                             eps=1e-8)
    return opt_g, opt_d


def _d_logits(cfg, disc, img, label, box, sigma, r1: bool = False):
    """D logits in the official order (`run_D` blurs the image in place, the face crop is then
    taken from the *blurred* image and blurred again by `run_D_face`). With `r1` the blurred
    image and the crop are detached leaves for the R1 gradients (the official Dreg inputs).
    Returns (logits, blurred image, face crop or None)."""
    blurred = L.blur(img, sigma)
    if r1:
        blurred = blurred.detach().requires_grad_(True)
    crop = None
    if disc.face is not None:
        crop = crop_boxes(blurred, box, cfg.face_resolution)
        if r1:
            crop = crop.detach().requires_grad_(True)
    face = None if crop is None else L.blur(crop, sigma)
    return disc(blurred, label, face_crop=face), blurred, crop


def train_step(cfg: Config, step: int, gen, gen_ema, disc, opt_g, opt_d, real, label,
               gen_label, sync: Dist | None = None) -> dict[str, float]:
    """One G step, one D step (+ lazy R1), EMA update. real: [B, 3, H, H] in [-1, 1] (this
    rank's share of the batch); `sync` averages gradients over torchrun ranks."""
    sync = sync or Dist()
    res, batch = cfg.data_resolution, real.shape[0]
    sigma = L.blur_sigma(step, cfg.blur_init_sigma, cfg.blur_fade_steps)
    bg = _background(cfg)
    backend = render_backend(cfg, real.device)
    # --- G phase
    gen.requires_grad_(True)
    disc.requires_grad_(False)
    out = gen(torch.randn(batch, cfg.z_dim, device=real.device), gen_label, res,
              perturb=cfg.perturb_points, background=bg, update_w_avg=True, backend=backend)
    logits, _, _ = _d_logits(cfg, disc, out["image"], gen_label, out["head_box"], sigma)
    loss_adv = L.g_nonsaturating(logits["main"])
    loss_face = L.g_nonsaturating(logits["face"]) if "face" in logits else torch.zeros(())
    loss_scale = L.scale_regularizer(out["textures"]["scale"], cfg.ref_scale, gen.uv_mask)
    loss_opacity = L.opacity_regularizer(out["textures"]["opacity"], gen.uv_mask)
    loss_g = (loss_adv + cfg.face_weight * loss_face + cfg.scale_reg_weight * loss_scale
              + cfg.opacity_reg_weight * loss_opacity)
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    sync.reduce_grads(gen, loss_g)  # raises on non-finite values, on every rank
    opt_g.step()
    # --- D phase
    gen.requires_grad_(False)
    disc.requires_grad_(True)
    with torch.no_grad():
        fake = gen(torch.randn(batch, cfg.z_dim, device=real.device), gen_label, res,
                   perturb=cfg.perturb_points, background=bg, backend=backend)
    fake_logits, _, _ = _d_logits(cfg, disc, fake["image"], gen_label, fake["head_box"], sigma)
    do_r1 = cfg.r1_gamma > 0 and step % cfg.r1_interval == 0
    real_box = gen.head_box(label, res) if disc.face is not None else None
    real_logits, real_in, real_crop = _d_logits(cfg, disc, real, label, real_box, sigma, do_r1)
    loss_d = L.d_logistic(real_logits["main"], fake_logits["main"])
    if "face" in real_logits:
        loss_d = loss_d + cfg.face_weight * L.d_logistic(real_logits["face"], fake_logits["face"])
    loss_r1 = torch.zeros(())
    if do_r1:  # official Dreg: R1 on the (blurred) real images and, weighted, the face crops
        penalty = L.r1_penalty(real_in, real_logits["main"])
        if "face" in real_logits:
            penalty = penalty + cfg.face_weight * L.r1_penalty(real_crop, real_logits["face"])
        loss_r1 = penalty * (cfg.r1_gamma / 2) * cfg.r1_interval
    opt_d.zero_grad(set_to_none=True)
    (loss_d + loss_r1).backward()
    sync.reduce_grads(disc, loss_d + loss_r1)
    opt_d.step()
    sync.average_([b for name, b in gen.named_buffers() if name.endswith("w_avg")])
    update_ema(gen, gen_ema, cfg, batch * sync.world, step * batch * sync.world)
    values = {"loss_g": loss_adv, "loss_face": loss_face, "loss_d": loss_d, "loss_r1": loss_r1,
              "reg_scale": loss_scale, "reg_opacity": loss_opacity,
              "d_real": real_logits["main"].mean(), "d_fake": fake_logits["main"].mean(),
              "blur_sigma": sigma, "degenerate_scales": out["num_degenerate_scales"]}
    metrics = sync.mean_metrics({k: float(torch.as_tensor(v).detach()) for k, v in values.items()})
    metrics["degenerate_scales"] *= sync.world  # a count: summed over ranks
    return metrics


def render_backend(cfg: Config, device: torch.device) -> str:
    return resolve_backend(cfg.render_backend, device)


def _background(cfg: Config) -> float:
    return {"white": 1.0, "gray": 0.5}.get(cfg.background, float(torch.rand(())))


def ema_beta(cfg: Config, batch: int, cur_nimg: int) -> float:
    """G_ema decay per step (official training loop): half-life ema_half_life_imgs, capped at
    ema_rampup x images seen so far, so the average starts as a copy of G."""
    half_life = cfg.ema_half_life_imgs
    if cfg.ema_rampup > 0:
        half_life = min(half_life, cur_nimg * cfg.ema_rampup)
    return 0.5 ** (batch / max(half_life, 1e-8))


@torch.no_grad()
def update_ema(gen, gen_ema, cfg: Config, batch: int, cur_nimg: int) -> None:
    beta = ema_beta(cfg, batch, cur_nimg)
    for p_ema, p in zip(gen_ema.parameters(), gen.parameters()):
        p_ema.copy_(p.lerp(p_ema, beta))
    for b_ema, b in zip(gen_ema.buffers(), gen.buffers()):
        b_ema.copy_(b)


def fit(cfg: Config) -> dict:
    """Train (one process, or every rank under torchrun); returns the last logged metrics."""
    check_sources(cfg)
    sync = init_distributed(cfg.device)
    if cfg.batch_size % sync.world:
        raise ConfigError(f"batch_size={cfg.batch_size} (the global batch) must be divisible "
                          f"by the number of torchrun processes ({sync.world})")
    seed_everything(cfg.seed)
    set_determinism(cfg.deterministic)
    device = sync.device
    run_dir = Path(sync.share(str(make_run_dir(cfg.out_dir, cfg.config_name)) if sync.main
                              else None))
    last = run_dir / "ckpt" / "last.pt"
    ckpt = resume_checkpoint(last.parent)  # last.pt, else last.prev.pt with a warning
    if ckpt is not None:  # before config.json is rewritten: a foreign config is refused
        _check_same_config(ckpt, cfg, last)
    if sync.main:
        (run_dir / "config.json").write_text(config_to_json(cfg))
        print(config_to_json(cfg))
    template, gen, gen_ema, disc = build_models(cfg, device)
    for module in (gen, gen_ema, disc):
        sync.broadcast_module(module)
    data = build_dataset(cfg, template)  # identical on every rank
    if sync.rank:  # each rank draws its own latents
        torch.manual_seed(cfg.seed + sync.rank)
    opt_g, opt_d = make_optimizers(cfg, gen, disc)
    start = 0
    loader_gen = torch.Generator().manual_seed(cfg.seed)  # same on all ranks: one global batch
    if ckpt is not None:  # resume: weights, optimisers and every RNG stream
        _load_state(ckpt, gen, gen_ema, disc, opt_g, opt_d)
        start = ckpt["step"]
        restore_rng(ckpt, sync, cfg.seed + 1000 * start)
        loader_gen.set_state(ckpt["rng_loader"])
        if sync.main:
            print(f"resumed from step {start} ({last.parent})")
    logger = MetricsLogger(run_dir, cfg.wandb, dataclasses.asdict(cfg), project=ARCH) \
        if sync.main else None
    bar = trange(start, cfg.steps, desc="train", disable=cfg.steps - start < 2 or not sync.main)
    per_rank = slice(sync.rank * cfg.batch_size // sync.world,
                     (sync.rank + 1) * cfg.batch_size // sync.world)
    metrics: dict = {}
    for step in bar:
        real, label, gen_label = _draw_batch(data, cfg.batch_size, loader_gen, per_rank, device)
        metrics = train_step(cfg, step, gen, gen_ema, disc, opt_g, opt_d, real, label, gen_label,
                             sync)
        metrics.update(memory_metrics(device))
        if logger and (step % cfg.log_every == 0 or step == cfg.steps - 1):
            logger.log(step, progress=bar, **metrics)
        if cfg.eval_every and (step + 1) % cfg.eval_every == 0 and step + 1 < cfg.steps:
            if logger:
                from .evaluation import quick_quality

                logger.log(step + 1, split="eval", **quick_quality(cfg, gen_ema, data, device))
            sync.barrier()
        if (step + 1) % cfg.save_every == 0 or step == cfg.steps - 1:
            _save(last, cfg, step + 1, gen, gen_ema, disc, opt_g, opt_d, loader_gen, sync)
    if start >= cfg.steps:
        _save(last, cfg, start, gen, gen_ema, disc, opt_g, opt_d, loader_gen, sync)
    if logger:
        logger.close()
    sync.close()
    return {"step": max(start, cfg.steps), "run_dir": str(run_dir), **metrics}


def memory_metrics(device: torch.device) -> dict[str, float]:
    """`cuda_max_mem_mib` (peak allocated on the training device) on CUDA; nothing on CPU."""
    if device.type != "cuda":
        return {}
    return {"cuda_max_mem_mib": torch.cuda.max_memory_allocated(device) / 2**20}


def _draw_batch(data, batch_size: int, loader_gen, per_rank: slice, device):
    """This rank's slice of one global batch: real images + labels, and the generator's
    conditioning labels c ~ p_data(c). All ranks draw the same indices from `loader_gen`."""
    idx = torch.randint(len(data), (batch_size,), generator=loader_gen)[per_rank]
    real, label = (torch.stack(t).to(device) for t in zip(*(data[int(i)] for i in idx)))
    gen_idx = torch.randint(len(data), (batch_size,), generator=loader_gen)[per_rank]
    gen_label = torch.stack([data[int(i)][1] for i in gen_idx]).to(device)
    return real, label, gen_label


def load_run(ckpt_path: str | Path, device: str = "auto"):
    """(cfg, G_ema, D, template, step) rebuilt from a checkpoint's own config."""
    ckpt = load_checkpoint(ckpt_path)
    try:
        cfg = config_from_dict(ckpt["config"], where=str(ckpt_path))
    except UserError as err:
        raise CheckpointError(f"{ckpt_path}: its config is not valid here", str(err)) from err
    dev = resolve_device(device if device != "auto" else cfg.device)
    template, gen, gen_ema, disc = build_models(cfg, dev)
    _load_state(ckpt, gen, gen_ema, disc)
    return cfg, gen_ema, disc, template, ckpt["step"]


def evaluate(ckpt_path: str | Path, out_dir: str | Path | None = None,
             num_images: int | None = None, keypoint_steps: int | None = None,
             pose_seq: str | None = None, quick: bool = False) -> dict:
    """Full evaluation of a checkpoint: metrics JSON + figures under <run>/eval/ (with
    `pose_seq`, also one identity re-posed by that .npy sequence: novel_pose.png)."""
    from .evaluation import run_evaluation
    from .tools import load_pose_sequence

    seq = load_pose_sequence(pose_seq) if pose_seq else None  # fail before the slow part
    cfg, gen_ema, _, template, step = load_run(ckpt_path)
    if keypoint_steps is not None:
        cfg = dataclasses.replace(cfg, eval_keypoint_steps=keypoint_steps)
    out = Path(out_dir) if out_dir else Path(ckpt_path).resolve().parent.parent / "eval"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create the evaluation folder {out} ({type(err).__name__})",
                        "choose a writable --out_dir") from err
    data = build_dataset(cfg, template)
    result = {"step": step, **run_evaluation(cfg, gen_ema, data, out, num_images, seq, quick)}
    (out / "metrics.json").write_text(json.dumps(result, indent=2))
    return result

"""Training loop (StyleGAN2/EG3D schedule as in the official code) and evaluation entry point.

One step = G phase (non-saturating loss + face D term + scale/opacity regularisers), D phase
(logistic loss on real/fake), lazy R1 every `r1_interval` D steps, then the G_ema update.
Under torchrun each rank trains on batch_size / world_size images and gradients are averaged
over ranks after each phase (distributed.py).
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import torch
from tqdm import trange

from . import losses as L
from .config import Config, config_from_dict, config_to_json
from .data import HumanImageFolder, SyntheticMannequins
from .distributed import Dist, init_distributed
from .model import GSMConfig, GSMGenerator, HumanDiscriminator, head_center
from .runtime import (
    MetricsLogger,
    load_checkpoint,
    make_run_dir,
    resolve_device,
    save_checkpoint,
    seed_everything,
    set_determinism,
)
from .template import load_body_template

ARCH = "gaussian-shell-maps"


def gsm_config(cfg: Config) -> GSMConfig:
    names = {f.name for f in dataclasses.fields(GSMConfig)}
    return GSMConfig(**{k: v for k, v in dataclasses.asdict(cfg).items() if k in names})


def build_models(cfg: Config, device: torch.device):
    """G, G_ema, D rebuilt from a Config (the template is reloaded from cfg.smpl_path)."""
    template = load_body_template(cfg.smpl_path)
    gen = GSMGenerator(gsm_config(cfg), template).to(device)
    gen_ema = copy.deepcopy(gen).eval().requires_grad_(False)
    disc = HumanDiscriminator(cfg.data_resolution, cfg.d_channel_base, cfg.d_channel_max,
                              cfg.mbstd_group, cfg.face_resolution if cfg.use_face_disc else 0)
    return template, gen, gen_ema, disc.to(device)


def build_dataset(cfg: Config, template):
    if cfg.data_name == "synthetic":
        return SyntheticMannequins(template, cfg.data_num_synthetic, cfg.data_resolution, cfg.seed)
    return HumanImageFolder(cfg.data_root, cfg.data_resolution)


def make_optimizers(cfg: Config, gen, disc):
    # lazy R1: StyleGAN2 rescales D's lr and betas by interval / (interval + 1)
    ratio = cfg.r1_interval / (cfg.r1_interval + 1) if cfg.r1_gamma > 0 else 1.0
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.g_lr, betas=(0.0, 0.99), eps=1e-8)
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.d_lr * ratio, betas=(0.0, 0.99 ** ratio),
                             eps=1e-8)
    return opt_g, opt_d


def train_step(cfg: Config, step: int, gen, gen_ema, disc, opt_g, opt_d, real, label,
               gen_label, sync: Dist | None = None) -> dict[str, float]:
    """One G step, one D step (+ lazy R1), EMA update. real: [B, 3, H, H] in [-1, 1] (this
    rank's share of the batch); `sync` averages gradients over torchrun ranks."""
    sync = sync or Dist()
    res, batch = cfg.data_resolution, real.shape[0]
    sigma = L.blur_sigma(step, cfg.blur_init_sigma, cfg.blur_fade_steps)
    bg = _background(cfg)
    # --- G phase
    gen.requires_grad_(True)
    disc.requires_grad_(False)
    backend = render_backend(cfg, real.device)
    out = gen(torch.randn(batch, cfg.z_dim, device=real.device), gen_label, res,
              perturb=cfg.perturb_points, background=bg, update_w_avg=True, backend=backend)
    logits = disc(L.blur(out["image"], sigma), gen_label, head_center(out["joints2d"]))  # Sec. 3.5
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
    fake_logits = disc(L.blur(fake["image"], sigma), gen_label, head_center(fake["joints2d"]))
    real_head = _real_head(gen, label, res) if disc.face is not None else None
    do_r1 = cfg.r1_gamma > 0 and step % cfg.r1_interval == 0
    real_in = L.blur(real, sigma).detach().requires_grad_(do_r1)
    real_logits = disc(real_in, label, real_head)
    loss_d = L.d_logistic(real_logits["main"], fake_logits["main"])
    if "face" in real_logits:
        loss_d = loss_d + cfg.face_weight * L.d_logistic(real_logits["face"], fake_logits["face"])
    loss_r1 = torch.zeros(())
    if do_r1:
        penalty = L.r1_penalty(real_in, real_logits["main"])
        loss_r1 = penalty * (cfg.r1_gamma / 2) * cfg.r1_interval
    opt_d.zero_grad(set_to_none=True)
    (loss_d + loss_r1).backward()
    sync.reduce_grads(disc, loss_d + loss_r1)
    opt_d.step()
    sync.average_([b for name, b in gen.named_buffers() if name.endswith("w_avg")])
    _update_ema(gen, gen_ema, cfg, batch * sync.world)
    values = {"loss_g": loss_adv, "loss_face": loss_face, "loss_d": loss_d, "loss_r1": loss_r1,
              "reg_scale": loss_scale, "reg_opacity": loss_opacity,
              "d_real": real_logits["main"].mean(), "d_fake": fake_logits["main"].mean(),
              "blur_sigma": sigma, "degenerate_scales": out["num_degenerate_scales"]}
    metrics = sync.mean_metrics({k: float(torch.as_tensor(v).detach()) for k, v in values.items()})
    metrics["degenerate_scales"] *= sync.world  # a count: summed over ranks
    return metrics


def render_backend(cfg: Config, device: torch.device) -> str:
    if cfg.render_backend == "auto":
        return "gsplat" if device.type == "cuda" else "torch"
    return cfg.render_backend


def _background(cfg: Config) -> float:
    return {"white": 1.0, "gray": 0.5}.get(cfg.background, float(torch.rand(())))


def _real_head(gen, label, res):
    from .cameras import project_points

    with torch.no_grad():
        posed = gen.pose(label, res)
        return head_center(project_points(posed["joints"], posed["viewmats"], posed["Ks"]))


@torch.no_grad()
def _update_ema(gen, gen_ema, cfg: Config, batch: int) -> None:
    beta = 0.5 ** (batch / max(cfg.ema_half_life_imgs, 1e-8))
    for p_ema, p in zip(gen_ema.parameters(), gen.parameters()):
        p_ema.copy_(p.lerp(p_ema, beta))
    for b_ema, b in zip(gen_ema.buffers(), gen.buffers()):
        b_ema.copy_(b)


def fit(cfg: Config) -> dict:
    """Train (one process, or every rank under torchrun); returns the last logged metrics."""
    sync = init_distributed(cfg.device)
    if cfg.batch_size % sync.world:
        raise ValueError(f"batch_size={cfg.batch_size} (the global batch) must be divisible by "
                         f"the number of torchrun processes ({sync.world})")
    seed_everything(cfg.seed)
    set_determinism(cfg.deterministic)
    device = sync.device
    run_dir = Path(sync.share(str(make_run_dir(cfg.out_dir, cfg.config_name)) if sync.main
                              else None))
    if sync.main:
        (run_dir / "config.json").write_text(config_to_json(cfg))
        print(config_to_json(cfg))
    template, gen, gen_ema, disc = build_models(cfg, device)
    for module in (gen, gen_ema, disc):
        sync.broadcast_module(module)
    data = build_dataset(cfg, template)  # identical on every rank
    if sync.rank:  # each rank draws its own latents and barycentric perturbations
        torch.manual_seed(cfg.seed + sync.rank)
    opt_g, opt_d = make_optimizers(cfg, gen, disc)
    start = 0
    last = run_dir / "ckpt" / "last.pt"
    loader_gen = torch.Generator().manual_seed(cfg.seed)  # same on all ranks: one global batch
    if last.is_file():  # resume: weights, optimisers and both RNG streams
        ckpt = load_checkpoint(last)
        _load_state(ckpt, gen, gen_ema, disc, opt_g, opt_d)
        start = ckpt["step"]
        _restore_rng(ckpt, sync, cfg.seed + 1000 * start)
        loader_gen.set_state(ckpt["rng_loader"])
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


def _draw_batch(data, batch_size: int, loader_gen, per_rank: slice, device):
    """This rank's slice of one global batch: real images + labels, and the generator's
    conditioning labels c ~ p_data(c). All ranks draw the same indices from `loader_gen`."""
    idx = torch.randint(len(data), (batch_size,), generator=loader_gen)[per_rank]
    real, label = (torch.stack(t).to(device) for t in zip(*(data[int(i)] for i in idx)))
    gen_idx = torch.randint(len(data), (batch_size,), generator=loader_gen)[per_rank]
    gen_label = torch.stack([data[int(i)][1] for i in gen_idx]).to(device)
    return real, label, gen_label


def _restore_rng(ckpt: dict, sync: Dist, fallback_seed: int) -> None:
    """This rank's CPU RNG state from the checkpoint; if the number of processes changed since
    it was written, a fresh per-rank seed instead (the run continues, not bit-identically)."""
    states = ckpt.get("rng_cpu_ranks") or [ckpt["rng_cpu"]]
    if len(states) == sync.world:
        torch.set_rng_state(states[sync.rank])
    else:
        print(f"resuming a {len(states)}-process run with {sync.world}: latents re-seeded")
        torch.manual_seed(fallback_seed + sync.rank)


def _save(path: Path, cfg, step, gen, gen_ema, disc, opt_g, opt_d, loader_gen, sync: Dist) -> None:
    """Rank 0 writes the checkpoint (after checking that the replicas agree); all ranks wait."""
    sync.check_consistent(gen, "G")
    sync.check_consistent(disc, "D")
    rng = sync.gather(torch.get_rng_state())
    if sync.main:
        extra = {"rng_cpu_ranks": rng} if sync.active else {}
        save_checkpoint(path, arch=ARCH, step=step, config=dataclasses.asdict(cfg),
                        model=gen.state_dict(), ema=gen_ema.state_dict(), disc=disc.state_dict(),
                        optimizer={"g": opt_g.state_dict(), "d": opt_d.state_dict()},
                        rng_cpu=rng[0], rng_loader=loader_gen.get_state(), world_size=sync.world,
                        **extra)
    sync.barrier()


def _load_state(ckpt: dict, gen, gen_ema, disc, opt_g=None, opt_d=None) -> None:
    if ckpt.get("arch") != ARCH:
        raise ValueError(f"checkpoint architecture {ckpt.get('arch')!r} is not {ARCH!r}")
    try:
        gen.load_state_dict(ckpt["model"], strict=True)
        gen_ema.load_state_dict(ckpt["ema"], strict=True)
        disc.load_state_dict(ckpt["disc"], strict=True)
    except RuntimeError as err:
        raise ValueError(f"checkpoint does not match the configured architecture: {err}") from err
    if opt_g is not None:
        opt_g.load_state_dict(ckpt["optimizer"]["g"])
        opt_d.load_state_dict(ckpt["optimizer"]["d"])


def load_run(ckpt_path: str | Path, device: str = "auto"):
    """(cfg, G_ema, D, dataset-free template) rebuilt from a checkpoint's own config."""
    ckpt = load_checkpoint(ckpt_path)
    if ckpt.get("arch") != ARCH or "config" not in ckpt:
        raise ValueError(f"{ckpt_path} is not a {ARCH} checkpoint (arch={ckpt.get('arch')!r})")
    cfg = config_from_dict(ckpt["config"], where=str(ckpt_path))
    dev = resolve_device(device if device != "auto" else cfg.device)
    template, gen, gen_ema, disc = build_models(cfg, dev)
    _load_state(ckpt, gen, gen_ema, disc)
    return cfg, gen_ema, disc, template, ckpt["step"]


def evaluate(ckpt_path: str | Path, out_dir: str | Path | None = None,
             num_images: int | None = None) -> dict:
    """Full evaluation of a checkpoint: metrics JSON + figures under <run>/eval/."""
    from .evaluation import run_evaluation

    cfg, gen_ema, _, template, step = load_run(ckpt_path)
    out = Path(out_dir) if out_dir else Path(ckpt_path).resolve().parent.parent / "eval"
    out.mkdir(parents=True, exist_ok=True)
    data = build_dataset(cfg, template)
    result = {"step": step, **run_evaluation(cfg, gen_ema, data, out, num_images)}
    (out / "metrics.json").write_text(json.dumps(result, indent=2))
    return result

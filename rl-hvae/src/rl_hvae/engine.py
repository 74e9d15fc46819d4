"""Training loop and evaluation: fit(cfg) -> dict, evaluate(ckpt) -> dict."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import torch
from tqdm import trange

from .config import Config, config_from_dict, config_to_json
from .data import ImageSet, batch_indices, binarize, load_split
from .distributed import Dist, init_distributed
from .losses import elbo_loss, free_nats_schedule, kl_beta, rl_loss
from .metrics import (
    active_units,
    iw_log_likelihood,
    mutual_information,
    posterior_stats,
    svm_accuracy,
)
from .model import HierarchicalVAE, HVAEArch
from .runtime import (
    MetricsLogger,
    load_checkpoint,
    make_run_dir,
    resolve_device,
    save_checkpoint,
    seed_everything,
    set_determinism,
)

# Fields that define the network; a checkpoint must agree on all of them to be loaded.
ARCH_FIELDS = ("data_name", "data_binarize", "model_channels", "model_blocks_per_stage",
               "model_stage_strides", "model_stage_kernels", "model_conv_latent_channels",
               "model_dense_latents")


def build_model(cfg: Config, data: ImageSet) -> HierarchicalVAE:
    """The HVAE for `cfg` and the image shape of `data`."""
    _, c, h, w = data.images.shape
    assert h == w, f"square images expected, got {h}x{w}"
    arch = HVAEArch(in_channels=c, image_size=h, channels=cfg.model_channels,
                    blocks_per_stage=cfg.model_blocks_per_stage,
                    stage_strides=cfg.model_stage_strides, stage_kernels=cfg.model_stage_kernels,
                    conv_latent_channels=cfg.model_conv_latent_channels,
                    dense_latents=cfg.model_dense_latents,
                    likelihood="bernoulli" if cfg.data_binarize else "discretized_logistic")
    return HierarchicalVAE(arch)


def prepare_batch(images: torch.Tensor, binarize_seed: int | None) -> torch.Tensor:
    """Binarise with `binarize_seed` (dynamic: a new seed per batch), else quantise to 8 bits."""
    if binarize_seed is not None:
        return binarize(images, binarize_seed)
    return torch.round(images * 255) / 255


class LossModule(torch.nn.Module):
    """The objective of one update as a forward(), so DistributedDataParallel can wrap it."""

    def __init__(self, model: HierarchicalVAE, cfg: Config) -> None:
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


def train_step(model: HierarchicalVAE, optimizer: torch.optim.Optimizer, x: torch.Tensor,
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


def _check_compatible(saved: dict, cfg: Config, path: Path) -> None:
    diff = {k: (saved.get(k), getattr(cfg, k)) for k in ARCH_FIELDS
            if _norm(saved.get(k)) != _norm(getattr(cfg, k))}
    if diff:
        raise ValueError(f"checkpoint {path} was written by another architecture "
                         f"(saved vs. requested: {diff}); use another out_dir or matching config")


def _norm(v):
    return tuple(v) if isinstance(v, list) else v


def _batch_for_step(step: int, cfg: Config, n_levels: int) -> int:
    return step // n_levels if cfg.method == "rl" else step


def fit(cfg: Config) -> dict:
    """Train per `cfg` (one process, or every rank under torchrun); resumes from
    <out_dir>/ckpt/last.pt when present. Returns final metrics."""
    sync = init_distributed(cfg.device)
    part = sync.part(cfg.batch_size)
    seed_everything(cfg.seed)
    set_determinism(cfg.deterministic)
    device = sync.device
    train = load_split(cfg.data_name, cfg.data_root, "train", cfg.data_val_fraction, cfg.seed)
    val = load_split(cfg.data_name, cfg.data_root, "val", cfg.data_val_fraction, cfg.seed)
    model = build_model(cfg, train).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    if sync.rank:  # own latent samples per rank (DDP copies rank 0's initial weights)
        torch.manual_seed(cfg.seed + sync.rank)
    run_dir = Path(sync.share(str(make_run_dir(cfg.out_dir, cfg.config_name)) if sync.main
                              else None))
    last = run_dir / "ckpt" / "last.pt"
    start = _resume(last, cfg, model, optimizer, sync) if last.is_file() else 0
    objective = LossModule(model, cfg).wrap(sync.world, device)
    logger = None
    if sync.main:
        (run_dir / "config.json").write_text(config_to_json(cfg))
        print(config_to_json(cfg))
        logger = MetricsLogger(run_dir, wandb=cfg.wandb, config=dataclasses.asdict(cfg))

    def save(step: int) -> None:
        sync.check_consistent(model)
        rng = sync.gather(torch.get_rng_state())
        if sync.main:
            save_checkpoint(last, step=step, config=dataclasses.asdict(cfg),
                            model=model.state_dict(), optimizer=optimizer.state_dict(),
                            rng_cpu=rng[0], rng_cpu_ranks=rng)
        sync.barrier()

    stats: dict[str, float] = {}
    bar = trange(start, cfg.steps, desc=f"train[{cfg.method}]", dynamic_ncols=True,
                 disable=not sync.main)
    for step in bar:
        b = _batch_for_step(step, cfg, model.n_levels)
        idx = batch_indices(len(train), cfg.batch_size, b, cfg.seed)
        bin_seed = cfg.seed * 1_000_003 + b if cfg.data_binarize else None
        x = prepare_batch(train.images[idx], bin_seed)[part]
        stats = train_step(model, optimizer, x.to(device), step, cfg, objective, sync)
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
    save(cfg.steps)
    sync.close()
    return {"run_dir": str(run_dir), "steps": cfg.steps,
            **{f"train_{k}": v for k, v in stats.items()},
            **{f"val_{k}": v for k, v in final.items()}}


def _resume(last: Path, cfg: Config, model, optimizer, sync: Dist) -> int:
    """Weights, optimiser and this rank's RNG state from `last`; returns the step."""
    ckpt = load_checkpoint(last)
    _check_compatible(ckpt["config"], cfg, last)
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    states = ckpt.get("rng_cpu_ranks") or [ckpt["rng_cpu"]]
    if len(states) == sync.world:
        torch.set_rng_state(states[sync.rank])
    else:  # the number of processes changed: continue, not bit-identically
        torch.manual_seed(cfg.seed + 1000 * ckpt["step"] + sync.rank)
    print(f"resuming from {last} at step {ckpt['step']}")
    return ckpt["step"]


def eval_images(data: ImageSet, cfg: Config, max_examples: int = 0) -> torch.Tensor:
    """The fixed evaluation images: one static binarisation (seed 0) of the first examples."""
    images = data.images[:max_examples] if max_examples else data.images
    return prepare_batch(images, 0 if cfg.data_binarize else None)


@torch.no_grad()
def quick_eval(model: HierarchicalVAE, data: ImageSet, cfg: Config, device: torch.device,
               max_examples: int = 512) -> dict[str, float]:
    """ELBO and 10-sample IW bound on up to `max_examples` validation images (for the log)."""
    model.eval()
    x = eval_images(data, cfg, max_examples).to(device)
    with torch.random.fork_rng(devices=[]):  # evaluation must not shift the training RNG stream
        torch.manual_seed(cfg.seed)
        res = iw_log_likelihood(model, x, k=10)
    return {"elbo": res["elbo"].mean().item(), "iw10": res["iw"].mean().item()}


def load_model(ckpt_path: str | Path, device: torch.device) -> tuple[HierarchicalVAE, Config, dict]:
    """Rebuild the model from the checkpoint's own config and load its weights (strict)."""
    ckpt = load_checkpoint(ckpt_path)
    cfg = config_from_dict(ckpt["config"], where=str(ckpt_path))
    data = load_split(cfg.data_name, cfg.data_root, "val", cfg.data_val_fraction, cfg.seed)
    model = build_model(cfg, data)
    try:
        model.load_state_dict(ckpt["model"], strict=True)
    except RuntimeError as err:
        raise ValueError(f"{ckpt_path}: weights do not fit the architecture in its config: "
                         f"{err}") from err
    return model.to(device).eval(), cfg, ckpt


@torch.no_grad()
def evaluate(ckpt_path: str | Path, iw_samples: int | None = None, max_examples: int | None = None,
             figures: bool = True, device_name: str = "auto") -> dict:
    """Full evaluation of a checkpoint on its validation/test split; writes <run>/eval/val.json.

    Metrics: IW NLL (k samples), ELBO, per-level KL, active units, I(x; z_l), SVM accuracy.
    """
    device = resolve_device(device_name)
    model, cfg, ckpt = load_model(ckpt_path, device)
    k = iw_samples or cfg.eval_iw_samples
    n_max = cfg.eval_max_examples if max_examples is None else max_examples
    train = load_split(cfg.data_name, cfg.data_root, "train", cfg.data_val_fraction, cfg.seed)
    val = load_split(cfg.data_name, cfg.data_root, "val", cfg.data_val_fraction, cfg.seed)
    x = eval_images(val, cfg, n_max).to(device)
    labels = val.labels[: x.shape[0]]
    torch.manual_seed(cfg.seed)
    res = iw_log_likelihood(model, x, k)
    q_val = posterior_stats(model, x)
    q_train = posterior_stats(model, eval_images(train, cfg, n_max or 0).to(device))
    train_labels = train.labels[: q_train[0].mean.shape[0]]
    gen = torch.Generator().manual_seed(cfg.seed)
    levels = []
    for lvl in range(model.n_levels):
        au, _ = active_units(q_val[lvl].mean.cpu())
        levels.append({
            "level": lvl + 1, "units": int(q_val[lvl].mean.shape[1]),
            "kl": res["kl"][lvl].mean().item(),
            "active_units": au, "mutual_information": mutual_information(
                type(q_val[lvl])(q_val[lvl].mean.cpu(), q_val[lvl].std.cpu()), gen),
            "svm_accuracy": svm_accuracy(q_train[lvl].mean.cpu().numpy(), train_labels.numpy(),
                                         q_val[lvl].mean.cpu().numpy(), labels.numpy()),
        })
    n_pixels = int(x[0].numel())
    out = {"step": int(ckpt["step"]), "method": cfg.method, "examples": int(x.shape[0]),
           "iw_samples": k, "nll": -res["iw"].mean().item(), "elbo": res["elbo"].mean().item(),
           "bits_per_dim": -res["iw"].mean().item() / (n_pixels * math.log(2)), "levels": levels}
    eval_dir = Path(ckpt_path).resolve().parent.parent / "eval"
    eval_dir.mkdir(parents=True, exist_ok=True)
    (eval_dir / "val.json").write_text(json.dumps(out, indent=2))
    if figures:
        from .plots import plot_levels, plot_skip_reconstructions

        plot_levels(levels, eval_dir / "levels.png", title=f"{cfg.method}, step {out['step']}")
        plot_skip_reconstructions(model, x[:8], eval_dir / "skip_reconstructions.png")
    return out

"""Training loop of the stand-in components (describers, likelihood models, CLIP-like baseline)
on the procedural concept world, and evaluation entry point.

Loop: seed -> device -> vocab -> model -> optimiser -> resume from last.pt -> steps -> save.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from tqdm import trange

from . import data, world
from .config import Config, config_from_dict, config_to_json
from .losses import info_nce
from .model import CCDAESystem, SystemSpec
from .runtime import (
    CheckpointError,
    ConfigError,
    MetricsLogger,
    check_finite,
    cuda_memory_record,
    load_checkpoint,
    make_run_dir,
    resolve_device,
    resume_checkpoint,
    save_checkpoint,
    seed_everything,
    set_determinism,
)

ARCH = "ccdae-system-v1"


def system_spec(cfg: Config) -> SystemSpec:
    return SystemSpec(desc_vocab=len(data.description_vocab(cfg.ccdae_max_complexity)),
                      text_vocab=len(data.text_vocab()), dim=cfg.model_dim,
                      heads=cfg.model_heads, layers=cfg.model_layers, image_size=cfg.image_size,
                      unet_channels=tuple(cfg.unet_channels), diffusion_steps=cfg.diffusion_steps)


def build_system(cfg: Config) -> CCDAESystem:
    return CCDAESystem(system_spec(cfg))


def describer_targets(graphs: list[tuple[int, ...]], budgets: np.ndarray,
                      vocab: data.Vocab) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher-forcing tensors for "describe in c tokens": input [<c>, w_1..w_c], target
    [w_1..w_c, <eos>] with the grammar's level-c description. Both [B, L]."""
    words = [world.describe(g, int(c)) for g, c in zip(graphs, budgets)]
    dec_in = data.pad_batch([[vocab.stoi[data.budget_token(int(c))]] + vocab.encode(w)
                             for w, c in zip(words, budgets)])
    tgt = data.pad_batch([vocab.encode(w) + [vocab.stoi[data.EOS]] for w in words])
    return dec_in, tgt


def train_step(system: CCDAESystem, batch: data.WorldBatch, cfg: Config,
               rng: np.random.Generator, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """All component losses on one world batch (each component has its own parameters)."""
    dv, tv = data.description_vocab(cfg.ccdae_max_complexity), data.text_vocab()
    dev = next(system.parameters()).device
    images = batch.images.to(dev)
    # describers: "describe in c tokens" -> the grammar's level-c description (the paper prompts for captions of a given length)
    budgets = rng.integers(1, cfg.ccdae_max_complexity + 1, size=len(batch.graphs))
    dec_in, tgt = (t.to(dev) for t in describer_targets(batch.graphs, budgets, dv))
    sentences = data.text_ids(batch.texts, tv).to(dev)
    losses = {
        "describer_image": system.image_describer.nll(images, dec_in, tgt).mean(),
        "describer_text": system.text_describer.nll(sentences, dec_in, tgt).mean(),
    }
    # likelihood models: condition on a random-level description (level 0 = unconditional)
    levels = rng.integers(0, world.LEVELS + 1, size=len(batch.graphs))
    cond = data.condition_ids([tuple(world.describe(g, int(k)))
                               for g, k in zip(batch.graphs, levels)], dv).to(dev)
    losses["diffusion"] = system.image_likelihood.loss(images, cond, generator=gen)
    toks = [t.split() for t in batch.texts]
    lm_in = data.pad_batch([[tv.stoi[data.BOS]] + tv.encode(w) for w in toks]).to(dev)
    lm_tgt = data.pad_batch([tv.encode(w) + [tv.stoi[data.EOS]] for w in toks]).to(dev)
    losses["text_lm"] = system.text_likelihood.nll(cond, lm_in, lm_tgt).mean()
    # CLIP-like baseline: image / sentence towers vs the full description
    full = data.condition_ids([tuple(world.graph_words(g)) for g in batch.graphs], dv).to(dev)
    clip = system.clip
    e_desc = clip.embed("desc", full)
    losses["clip"] = (info_nce(clip.embed("image", images), e_desc, clip.logit_scale)
                      + info_nce(clip.embed("text", sentences), e_desc, clip.logit_scale))
    return losses


def fit(cfg: Config) -> dict:
    """Train every stand-in component; returns the last logged metrics."""
    seed_everything(cfg.seed)
    set_determinism(cfg.deterministic)
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    device = resolve_device(cfg.device)
    run_dir = make_run_dir(cfg.out_dir, cfg.config_name)
    (run_dir / "config.json").write_text(config_to_json(cfg))
    print(config_to_json(cfg))
    system = build_system(cfg).to(device)
    optimizer = torch.optim.AdamW(system.parameters(), lr=cfg.lr, weight_decay=0.0)
    start = 0
    last = run_dir / "ckpt" / "last.pt"
    ckpt = resume_checkpoint(last.parent)  # last.pt, else last.prev.pt (warns), else None
    if ckpt is not None:
        _load_weights(ckpt, system, last)
        optimizer.load_state_dict(ckpt["optimizer"])
        start = int(ckpt["step"])
        print(f"resumed from {last.parent} at step {start}")
    logger = MetricsLogger(run_dir, cfg.wandb, dataclasses.asdict(cfg), "ccdae-similarity")
    metrics: dict[str, float] = {}
    bar = trange(start, cfg.steps, desc="train", disable=cfg.steps - start < 2)
    for step in bar:
        rng = np.random.default_rng([cfg.seed, step])  # step-indexed: resume == uninterrupted
        gen = torch.Generator(device=device).manual_seed(cfg.seed * 1_000_003 + step)
        batch = data.sample_world_batch(rng, cfg.batch_size, cfg.image_size,
                                        cfg.world_pixel_noise)
        system.train()
        losses = train_step(system, batch, cfg, rng, gen)
        check_finite(losses)
        total = sum(losses.values())
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(system.parameters(), cfg.grad_clip)
        optimizer.step()
        metrics = ({k: float(v) for k, v in losses.items()} | {"loss": float(total)}
                   | cuda_memory_record(device))
        if (step + 1) % cfg.log_every == 0 or step == start or step + 1 == cfg.steps:
            logger.log(step + 1, "train", progress=bar, **metrics)
        if (step + 1) % cfg.save_every == 0 and step + 1 < cfg.steps:
            _save(last, system, optimizer, cfg, step + 1)
    _save(last, system, optimizer, cfg, max(cfg.steps, start))
    logger.close()
    return {"run_dir": str(run_dir), "step": max(cfg.steps, start), **metrics}


def _save(path: Path, system: CCDAESystem, optimizer, cfg: Config, step: int) -> None:
    save_checkpoint(path, arch=ARCH, step=step, config=dataclasses.asdict(cfg),
                    model=system.state_dict(), optimizer=optimizer.state_dict())


def _load_weights(ckpt: dict, system: CCDAESystem, path: str | Path) -> None:
    """Strict load; a checkpoint of another architecture or config is a CheckpointError."""
    if ckpt.get("arch") != ARCH:
        raise CheckpointError(f"{path}: architecture {ckpt.get('arch')!r} is not {ARCH!r}",
                              "a checkpoint of another model")
    try:
        system.load_state_dict(ckpt["model"], strict=True)
    except (RuntimeError, KeyError, TypeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path}: weights do not fit this architecture/config",
                              f"checkpoint of another config? {first[:200]}") from err


def load_system_checkpoint(path: str | Path, system: CCDAESystem | None = None):
    """Load a checkpoint; rebuild the system from its config when none is given (strict)."""
    ckpt = load_checkpoint(path)
    if ckpt.get("arch") != ARCH:
        _load_weights(ckpt, system, path)  # raises the architecture error
    if system is None:
        try:
            system = build_system(config_from_dict(ckpt["config"], where=str(path)))
        except (ConfigError, KeyError, TypeError) as err:
            raise CheckpointError(f"{path}: its config does not describe a model",
                                  str(err)[:200]) from err
    _load_weights(ckpt, system, path)
    ckpt["system"] = system
    return ckpt


def evaluate(ckpt_path: str | Path, overrides: dict | None = None) -> dict:
    """Score the world benchmark (and a real benchmark when bench_name says so) with the
    checkpoint's models; writes <run>/eval/*.json and PNG figures next to the checkpoint."""
    import json

    from . import evaluation, plots

    ckpt = load_system_checkpoint(ckpt_path)
    cfg = config_from_dict({**ckpt["config"], **(overrides or {})}, where="eval overrides")
    seed_everything(cfg.eval_seed)
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    system = ckpt["system"].to(resolve_device(cfg.device)).eval()
    out_dir = Path(ckpt_path).resolve().parent.parent / "eval"
    out_dir.mkdir(parents=True, exist_ok=True)
    results = {}
    if cfg.bench_name == "world":
        for kind in cfg.eval_modalities:
            if kind not in ("image", "text"):
                raise ConfigError(f"eval_modalities: {kind!r} is not 'image' or 'text'")
            res = evaluation.world_benchmark(system, cfg, kind)
            (out_dir / f"world_{kind}.json").write_text(json.dumps(res, indent=2))
            plots.plot_curves(res, out_dir / f"curves_{kind}.png")
            results[kind] = res
        plots.plot_correlations(results, out_dir / "correlations.png")
    else:
        res = evaluation.real_benchmark(system, cfg)
        (out_dir / f"{cfg.bench_name}.json").write_text(json.dumps(res, indent=2))
        results[cfg.bench_name] = res
    summary = {name: res["table"] for name, res in results.items()}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return {"eval_dir": str(out_dir), "step": int(ckpt["step"]), **summary}

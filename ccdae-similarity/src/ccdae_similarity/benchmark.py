"""Throughput of CC:DAE scoring (bench.py): pairs per second, growth with the number of
complexity levels and descriptions per level, describe-vs-likelihood split, batched vs per-pair."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch

from . import ccdae, data, world
from .ccdae import ScoreOptions
from .config import Config
from .engine import build_system
from .modalities import WorldImageModality, WorldTextModality


def _bank(cfg: Config, n: int, kind: str):
    rng = np.random.default_rng(0)
    samples = [world.Sample(world.random_graph(rng), world.random_nuisance(rng)) for _ in range(n)]
    if kind == "image":
        return data.render_samples(samples, cfg.image_size, cfg.world_pixel_noise)
    return [world.realise(s.graph, s.nuisance) for s in samples]


def _timed(fn, *args) -> tuple[object, float]:
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def _per_pair(pairs, mod, opts) -> list:
    return [ccdae._reference_score_pair(i, j, mod, opts) for i, j in pairs]


def run_benchmark(cfg: Config, n_pairs: int = 8) -> list[dict]:
    """Rows of {figure, value, reference, ratio} (value and reference in one run)."""
    torch.manual_seed(0)
    system = build_system(cfg).eval()
    dv = data.description_vocab(cfg.ccdae_max_complexity)
    pairs = [(2 * k, 2 * k + 1) for k in range(n_pairs)]
    mods = {"image": WorldImageModality(system, _bank(cfg, 2 * n_pairs, "image"), dv,
                                        cfg.elbo_timesteps, cfg.elbo_weighting),
            "text": WorldTextModality(system, _bank(cfg, 2 * n_pairs, "text"), dv,
                                      data.text_vocab())}
    base = ScoreOptions(max_complexity=cfg.ccdae_max_complexity, samples=cfg.ccdae_samples,
                        seed=cfg.eval_seed)
    rows = []
    for kind, mod in mods.items():
        for lik in ("decoder", "encoder"):
            opts = dataclasses.replace(base, likelihood=lik)
            _, t_batched = _timed(ccdae.score_pairs, pairs, mod, opts)
            _, t_ref = _timed(_per_pair, pairs, mod, opts)
            rows.append({"figure": f"{kind}/{lik}: pairs/s batched vs per-pair reference",
                         "value": n_pairs / t_batched, "reference": n_pairs / t_ref,
                         "ratio": t_ref / t_batched})
        samples = sorted({i for p in pairs for i in p})
        descs, t_desc = _timed(ccdae.describe_all, samples, mod, base)
        keys = sorted({(x, h, 0) for (i, j) in pairs for c in range(1, base.max_complexity + 1)
                       for h in descs[(i, c)][0] + descs[(j, c)][0] for x in (i, j)})
        _, t_lik = _timed(ccdae._evaluate_losses, keys, mod, base, False)
        rows.append({"figure": f"{kind}: seconds describe / likelihood (decoder)",
                     "value": t_desc, "reference": t_lik, "ratio": t_desc / max(t_lik, 1e-9)})
        for field, values in (("max_complexity", (2, 4, 6)), ("samples", (1, 2, 4))):
            times = []
            for v in values:
                opts = dataclasses.replace(base, **{field: v})
                times.append(_timed(ccdae.score_pairs, pairs, mod, opts)[1])
            for v, t in zip(values[1:], times[1:]):
                rows.append({"figure": f"{kind}: s/pair at {field}={v} vs {values[0]}",
                             "value": t / n_pairs, "reference": times[0] / n_pairs,
                             "ratio": t / times[0]})
    return rows


def run_gpu_benchmark(cfg: Config, n_pairs: int = 8, train_steps: int = 5) -> dict[str, float]:
    """CUDA figures at the given (paper) preset: pairs/s of the batched scorer per modality and
    training steps/s of all components at the preset's batch size. Needs CUDA."""
    from .engine import train_step

    device = torch.device("cuda")
    torch.manual_seed(0)
    system = build_system(cfg).to(device).eval()
    dv = data.description_vocab(cfg.ccdae_max_complexity)
    pairs = [(2 * k, 2 * k + 1) for k in range(n_pairs)]
    opts = ScoreOptions(max_complexity=cfg.ccdae_max_complexity, samples=cfg.ccdae_samples,
                        seed=cfg.eval_seed)
    mods = {"image": WorldImageModality(system, _bank(cfg, 2 * n_pairs, "image"), dv,
                                        cfg.elbo_timesteps, cfg.elbo_weighting),
            "text": WorldTextModality(system, _bank(cfg, 2 * n_pairs, "text"), dv,
                                      data.text_vocab())}
    figures: dict[str, float] = {}
    for kind, mod in mods.items():
        torch.cuda.synchronize()
        _, seconds = _timed(ccdae.score_pairs, pairs, mod, opts)
        torch.cuda.synchronize()
        figures[f"{kind}_pairs_per_s_cuda"] = n_pairs / seconds
    system.train()
    optimizer = torch.optim.AdamW(system.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(0)
    gen = torch.Generator(device=device).manual_seed(0)
    times = []
    for _ in range(train_steps + 1):  # the first step warms up kernels and the allocator
        batch = data.sample_world_batch(rng, cfg.batch_size, cfg.image_size, cfg.world_pixel_noise)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss = sum(train_step(system, batch, cfg, rng, gen).values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    figures["train_steps_per_s_cuda"] = 1.0 / float(np.median(times[1:]))
    figures["cuda_max_mem_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return figures

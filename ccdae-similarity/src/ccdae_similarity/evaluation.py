"""Evaluation (experiments): CC:DAE and baselines vs ground-truth / human similarity.

World benchmark: pairs with known conceptual similarity (first differing scene-graph level),
the motivating-case subsets, and 2AFC triplets; image-image and text-text.
Real benchmark: CxC SIS/STS, STS-B or a pairs.csv, with human scores (data.load_real_pairs).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch

from . import baselines, data, metrics, world
from .ccdae import PairScore, ScoreOptions, score_pairs
from .config import Config
from .modalities import WorldImageModality, WorldTextModality
from .model import CCDAESystem
from .runtime import ConfigError


def score_options(cfg: Config, likelihood: str | None = None) -> ScoreOptions:
    return ScoreOptions(max_complexity=cfg.ccdae_max_complexity, samples=cfg.ccdae_samples,
                        temperature=cfg.ccdae_temperature,
                        likelihood=likelihood or cfg.ccdae_likelihood,
                        weighting=cfg.ccdae_weighting, beta=cfg.ccdae_beta,
                        auc_norm=cfg.ccdae_auc_norm, sep_threshold=cfg.ccdae_sep_threshold,
                        seed=cfg.eval_seed)


def build_modality(system: CCDAESystem, cfg: Config, kind: str, bank):
    """World stand-ins, or the pretrained models when their folders are configured."""
    device = next(system.parameters()).device
    if kind == "text" and cfg.pretrained_lm:
        from .pretrained import HFTextModality

        return HFTextModality(cfg.pretrained_lm, bank, device)
    if kind == "image" and (cfg.pretrained_captioner or cfg.pretrained_t2i):
        if not (cfg.pretrained_captioner and cfg.pretrained_t2i):
            raise ConfigError("pretrained images need both pretrained_captioner and pretrained_t2i",
                              "README 'Pretrained weights'")
        from .pretrained import HFImageModality

        return HFImageModality(cfg.pretrained_captioner, cfg.pretrained_t2i, bank, device,
                               cfg.elbo_timesteps, cfg.eval_seed)
    if kind == "image":
        return WorldImageModality(system, bank, data.description_vocab(cfg.ccdae_max_complexity),
                                  cfg.elbo_timesteps, cfg.elbo_weighting, cfg.eval_seed)
    return WorldTextModality(system, bank, data.description_vocab(cfg.ccdae_max_complexity),
                             data.text_vocab())


def ccdae_scores(system, cfg: Config, kind: str, bank, pairs: list[tuple[int, int]],
                 likelihood: str | None = None) -> tuple[list[PairScore], float]:
    """Batched CC:DAE scores of index pairs into `bank`; returns (scores, seconds)."""
    modality = build_modality(system, cfg, kind, bank)
    opts = score_options(cfg, likelihood)
    t0 = time.perf_counter()
    out = []
    for s in range(0, len(pairs), cfg.eval_batch_pairs):
        out += score_pairs(pairs[s: s + cfg.eval_batch_pairs], modality, opts)
    return out, time.perf_counter() - t0


def baseline_scores(system, cfg: Config, kind: str, bank, pairs) -> dict[str, np.ndarray]:
    ia, ib = [p[0] for p in pairs], [p[1] for p in pairs]
    if kind == "image":
        a, b = bank[ia], bank[ib]
        dev = next(system.parameters()).device
        lp = "lpips_alex" if cfg.lpips_weights else "lpips_randalex"
        return {"clip_cosine": baselines.clip_similarity(system, "image", a.to(dev), b.to(dev)),
                "pixel_l2": baselines.pixel_similarity(a, b), "ssim": baselines.ssim(a, b),
                lp: baselines.lpips_similarity(a, b, cfg.lpips_weights)}
    ta, tb = [bank[i] for i in ia], [bank[i] for i in ib]
    tv = data.text_vocab()
    dev = next(system.parameters()).device
    return {"clip_cosine": baselines.clip_similarity(system, "text", data.text_ids(ta, tv).to(dev),
                                                     data.text_ids(tb, tv).to(dev)),
            "minilm_cosine": baselines.minilm_similarity(ta, tb),
            "lexical_jaccard": baselines.lexical_similarity(ta, tb)}


def _bank(samples: list[world.Sample], cfg: Config, kind: str):
    if kind == "image":
        return data.render_samples(samples, cfg.image_size, cfg.world_pixel_noise)
    return [world.realise(s.graph, s.nuisance) for s in samples]


def world_benchmark(system: CCDAESystem, cfg: Config, kind: str) -> dict:
    """Correlations, motivating-case subsets and 2AFC for CC:DAE and baselines on the world."""
    pairs = world.make_pairs(cfg.eval_seed, cfg.eval_pairs_per_level, cfg.eval_motivating_pairs,
                             kind)
    triplets = world.make_triplets(cfg.eval_seed + 1, cfg.eval_triplets)
    if cfg.eval_max_pairs > 0:  # a quick check of the pipeline (smoke.py), not a benchmark
        pairs, triplets = pairs[: cfg.eval_max_pairs], []
    samples = [s for p in pairs for s in (p.a, p.b)] + [s for t in triplets for s in t]
    bank = _bank(samples, cfg, kind)
    n = 2 * len(pairs)
    idx = [(2 * k, 2 * k + 1) for k in range(len(pairs))]
    idx += [(n + 3 * k, n + 3 * k + d) for k in range(len(triplets)) for d in (1, 2)]
    scores, seconds = ccdae_scores(system, cfg, kind, bank, idx)
    methods = {"ccdae": np.array([s.similarity for s in scores])}
    other = "encoder" if cfg.ccdae_likelihood == "decoder" else "decoder"
    alt, _ = ccdae_scores(system, cfg, kind, bank, idx, likelihood=other)
    methods[f"ccdae_{other}"] = np.array([s.similarity for s in alt])
    methods |= baseline_scores(system, cfg, kind, bank, idx)
    gt = np.array([p.level for p in pairs], dtype=np.float64)
    kinds = np.array([p.kind for p in pairs])
    rand, near, far = kinds == "random", kinds == "surface_near_concept_far", \
        kinds == "surface_far_concept_same"
    motiv = near | far
    table = {}
    for name, sim in methods.items():
        ps, tri = sim[: len(pairs)], sim[len(pairs):]
        table[name] = {
            "spearman": metrics.spearman(ps[rand], gt[rand]),
            "kendall": metrics.kendall(ps[rand], gt[rand]),
            "spearman_all": metrics.spearman(ps, gt),
            "motivating_spearman": metrics.spearman(ps[motiv], gt[motiv]),
            "motivating_ranking_acc": metrics.ranking_accuracy(ps[far], ps[near]),
            "two_afc": metrics.two_afc(tri[0::2], tri[1::2]),
        }
    examples = []
    for level in range(world.LEVELS + 1):
        k = int(np.flatnonzero(rand & (gt == level))[0]) if (rand & (gt == level)).any() else None
        if k is not None:
            examples.append({"level": level, **dataclasses.asdict(scores[k]),
                             "a": world.describe(pairs[k].a.graph, world.LEVELS),
                             "b": world.describe(pairs[k].b.graph, world.LEVELS)})
    failed = sum(len(s.failed_levels) for s in scores)
    return {"modality": kind, "pairs": len(pairs), "triplets": len(triplets), "table": table,
            "ccdae_seconds": seconds, "ccdae_pairs_per_second": len(idx) / max(seconds, 1e-9),
            "failed_levels_total": failed, "examples": examples,
            "curves_by_level": _mean_curves(scores[: len(pairs)], gt, rand)}


def _mean_curves(scores: list[PairScore], gt: np.ndarray, mask: np.ndarray) -> dict:
    out = {}
    for level in np.unique(gt[mask]).astype(int):
        curves = np.array([s.curve for s, g, m in zip(scores, gt, mask) if m and g == level])
        out[str(level)] = np.nanmean(curves, 0).tolist()
    return out


def real_benchmark(system: CCDAESystem, cfg: Config) -> dict:
    """Correlation with human scores on a real benchmark (stand-in models unless pretrained)."""
    pairs = data.load_real_pairs(cfg.bench_name, cfg.data_root, "test", cfg.bench_max_pairs)
    if pairs.modality == "image":
        files = sorted(set(pairs.a) | set(pairs.b))
        pos = {f: i for i, f in enumerate(files)}
        bank = torch.stack([data.load_image(f, cfg.image_size) for f in files])
    else:
        files = sorted(set(pairs.a) | set(pairs.b))
        pos = {f: i for i, f in enumerate(files)}
        bank = files
    idx = [(pos[a], pos[b]) for a, b in zip(pairs.a, pairs.b)]
    scores, seconds = ccdae_scores(system, cfg, pairs.modality, bank, idx)
    methods = {"ccdae": np.array([s.similarity for s in scores])}
    methods |= baseline_scores(system, cfg, pairs.modality, bank, idx)
    table = {k: {"spearman": metrics.spearman(v, pairs.score),
                 "kendall": metrics.kendall(v, pairs.score)} for k, v in methods.items()}
    return {"benchmark": cfg.bench_name, "modality": pairs.modality, "pairs": len(idx),
            "table": table, "ccdae_seconds": seconds,
            "note": "stand-in models trained on the procedural world unless pretrained_* paths"
                    " are given; not the paper's numbers"}

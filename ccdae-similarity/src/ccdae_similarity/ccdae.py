"""CC:DAE: distance-vs-complexity curve, symmetrisation, AUC score, interpretation.

The method of the paper; the exact formulas are our reconstruction (README, "Deviations").

For a sample x, a description h and the likelihood model's loss l(x|h) = -log p(x|h):
  * at each complexity budget c the describer proposes descriptions h ~ r_c(h|x) of at most c
    tokens (several per budget);
  * stochastic relaxation of the budgeted problem min_{h: |h|<=c} l(x|h): the optimal
    distribution q*_c(h|x) ∝ r_c(h|x) exp(-l(x|h)/beta) is estimated by self-normalised
    importance weights w_k ∝ exp(-l(x|h_k)/beta) over the proposals (uniform weights = plain
    Monte-Carlo average of the describer's samples; beta -> 0 recovers the hard argmin);
  * directed distance d_c(x1 -> x2) = E_{q*_c(h|x1)} [ l(x2|h) - l(x1|h) ]: how much worse x2 is
    explained than x1 by x1's own descriptions;
  * symmetric distance d_c(x1, x2) = (d_c(x1 -> x2) + d_c(x2 -> x1)) / 2; d_0 = 0 (the empty
    description explains both equally); every term depending on x alone (log p(x)) cancels;
  * score: area under d_c over c (trapezoid), divided by the complexity range ("range"
    normalisation); similarity = -AUC (the later the curve rises, the more similar);
  * interpretation: the first budget at which d_c reaches `sep_threshold` x max_c d_c, with the
    two samples' leading descriptions there and one budget before.
Encoder route ("encoder"): by Bayes, l(x|h) = -log r(h|x) - log p(x) + log p(h); inside d the
p(h) and p(x) terms cancel, so d can be computed from the describer's own log r(h|x) alone.

Shapes: P pairs, C max complexity, K descriptions per sample and budget.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from tqdm import tqdm

Description = tuple[str, ...]


class Modality(Protocol):
    """What CC:DAE needs from a describer + likelihood model for one set of samples."""

    def describe(self, idx: list[int], budget: int, n: int, temperature: float,
                 seed: int) -> list[list[Description]]:
        """n descriptions of at most `budget` tokens for every sample in idx."""

    def nll(self, idx: list[int], descs: list[Description]) -> np.ndarray:
        """-log p(x_idx[k] | descs[k]) per item (decoder route). [len(idx)]"""

    def desc_logprob(self, idx: list[int], descs: list[Description], budget: int) -> np.ndarray:
        """log r_c(descs[k] | x_idx[k]) under the describer at this budget (encoder route)."""


@dataclass(frozen=True)
class ScoreOptions:
    max_complexity: int = 6
    samples: int = 4
    temperature: float = 1.0
    likelihood: str = "decoder"  # decoder | encoder
    weighting: str = "importance"  # uniform | importance
    beta: float = 1.0
    auc_norm: str = "range"  # range | none
    sep_threshold: float = 0.5
    seed: int = 0


@dataclass
class PairScore:
    complexities: list[int]
    curve: list[float]  # d_c, NaN at failed levels
    auc: float
    similarity: float  # -auc
    separation_complexity: int | None
    explanation: dict = field(default_factory=dict)
    failed_levels: list[int] = field(default_factory=list)  # budgets with no description


# ------------------------------------------------------------------------ pure math functions
def description_weights(counts: np.ndarray, loss_self: np.ndarray, weighting: str,
                        beta: float) -> np.ndarray:
    """Self-normalised weights of K unique descriptions drawn `counts` times from r_c(h|x).

    importance: w ∝ counts * exp(-l(x|h)/beta), the estimate of q*_c ∝ r_c exp(-l/beta).
    uniform:    w ∝ counts (the describer's empirical distribution)."""
    counts = np.asarray(counts, dtype=np.float64)
    if weighting == "uniform":
        logw = np.log(counts)
    elif weighting == "importance":
        logw = np.log(counts) - np.asarray(loss_self, dtype=np.float64) / beta
    else:
        raise ValueError(f"weighting {weighting!r}: expected 'uniform' or 'importance'")
    logw -= logw.max()
    w = np.exp(logw)
    return w / w.sum()


def symmetric_distance(w1: np.ndarray, l11: np.ndarray, l21: np.ndarray, w2: np.ndarray,
                       l22: np.ndarray, l12: np.ndarray) -> float:
    """d_c(x1, x2) = (E_{q1}[l(x2|h) - l(x1|h)] + E_{q2}[l(x1|h) - l(x2|h)]) / 2.

    l_ab[k] = l(x_a | h_k) for the k-th description of sample b; w_b its weights."""
    d12 = float(np.sum(w1 * (np.asarray(l21) - np.asarray(l11))))
    d21 = float(np.sum(w2 * (np.asarray(l12) - np.asarray(l22))))
    return 0.5 * (d12 + d21)


def area_under_curve(complexities: list[int] | np.ndarray, curve: list[float] | np.ndarray,
                     norm: str = "range") -> float:
    """Trapezoid area of d over complexity, skipping NaN (failed) levels; "range" divides by
    the covered complexity range so the score is a mean distance."""
    c = np.asarray(complexities, dtype=np.float64)
    d = np.asarray(curve, dtype=np.float64)
    ok = np.isfinite(d)
    if ok.sum() < 2:
        return math.nan
    c, d = c[ok], d[ok]
    area = float(np.sum((c[1:] - c[:-1]) * (d[1:] + d[:-1]) / 2))
    if norm == "range":
        return area / float(c[-1] - c[0])
    if norm != "none":
        raise ValueError(f"auc_norm {norm!r}: expected 'range' or 'none'")
    return area


def separation_complexity(complexities: list[int], curve: list[float],
                          threshold: float) -> int | None:
    """First budget where d_c >= threshold * max d (None if the curve never rises above 0)."""
    d = np.asarray(curve, dtype=np.float64)
    top = np.nanmax(d) if np.isfinite(d).any() else math.nan
    if not np.isfinite(top) or top <= 0:
        return None
    for c, v in zip(complexities, d):
        if np.isfinite(v) and v >= threshold * top and c > 0:
            return int(c)
    return None


# ----------------------------------------------------------------------------- scoring
def _dedupe(descs: list[Description], budget: int) -> tuple[list[Description], np.ndarray]:
    for h in descs:
        if len(h) > budget:
            raise ValueError(f"describer broke the complexity budget {budget}: {h}")
    counts = Counter(h for h in descs if len(h) > 0)
    uniq = sorted(counts)
    return uniq, np.array([counts[h] for h in uniq], dtype=np.float64)


def _pair_curve(i: int, j: int, descs: dict, loss, opts: ScoreOptions) -> PairScore:
    """Curve, AUC and explanation of one pair from cached descriptions and losses."""
    cs = list(range(opts.max_complexity + 1))
    curve, failed, lead = [0.0], [], {}
    for c in cs[1:]:
        (h1, n1), (h2, n2) = descs[(i, c)], descs[(j, c)]
        if not h1 or not h2:
            failed.append(c)
            curve.append(math.nan)
            continue
        l11 = np.array([loss(i, h, c) for h in h1])
        l21 = np.array([loss(j, h, c) for h in h1])
        l22 = np.array([loss(j, h, c) for h in h2])
        l12 = np.array([loss(i, h, c) for h in h2])
        w1 = description_weights(n1, l11, opts.weighting, opts.beta)
        w2 = description_weights(n2, l22, opts.weighting, opts.beta)
        curve.append(symmetric_distance(w1, l11, l21, w2, l22, l12))
        lead[c] = (" ".join(h1[int(np.argmax(w1))]), " ".join(h2[int(np.argmax(w2))]))
    auc = area_under_curve(cs, curve, opts.auc_norm)
    sep = separation_complexity(cs, curve, opts.sep_threshold)
    explanation = {}
    if sep is not None:
        explanation = {"separating_descriptions": list(lead.get(sep, ("", ""))),
                       "shared_before": list(lead.get(sep - 1, ("", ""))) if sep > 1 else ["", ""]}
    return PairScore(cs, [float(v) for v in curve], auc, -auc, sep, explanation, failed)


def describe_all(samples: list[int], modality: Modality, opts: ScoreOptions) -> dict:
    """{(sample, budget): (unique descriptions, counts)} for budgets 1..C."""
    descs = {}
    for c in range(1, opts.max_complexity + 1):
        drawn = modality.describe(samples, c, opts.samples, opts.temperature, opts.seed)
        for i, lst in zip(samples, drawn):
            descs[(i, c)] = _dedupe(lst, c)
    return descs


def score_pairs(pairs: list[tuple[int, int]], modality: Modality, opts: ScoreOptions,
                progress: bool = False) -> list[PairScore]:
    """Batched CC:DAE: describe every distinct sample once, evaluate every needed
    (sample, description) loss once (cache), then assemble each pair's curve."""
    if any(len(p) != 2 for p in pairs):
        raise ValueError("every pair must hold exactly two sample indices")
    samples = sorted({i for p in pairs for i in p})
    descs = describe_all(samples, modality, opts)
    encoder = opts.likelihood == "encoder"
    needed = set()
    for i, j in pairs:
        for c in range(1, opts.max_complexity + 1):
            for h in descs[(i, c)][0] + descs[(j, c)][0]:
                needed.update({(i, h, c if encoder else 0), (j, h, c if encoder else 0)})
    cache = _evaluate_losses(sorted(needed), modality, opts, progress)

    def loss(x: int, h: Description, c: int) -> float:
        return cache[(x, h, c if encoder else 0)]

    return [_pair_curve(i, j, descs, loss, opts) for i, j in pairs]


def _evaluate_losses(keys: list[tuple[int, Description, int]], modality: Modality,
                     opts: ScoreOptions, progress: bool) -> dict:
    out = {}
    if opts.likelihood == "encoder":
        for c in sorted({k[2] for k in keys}):
            group = [k for k in keys if k[2] == c]
            lp = modality.desc_logprob([k[0] for k in group], [k[1] for k in group], c)
            out.update({k: -float(v) for k, v in zip(group, lp)})
        return out
    if opts.likelihood != "decoder":
        raise ValueError(f"likelihood {opts.likelihood!r}: expected 'decoder' or 'encoder'")
    chunk = 256
    for s in tqdm(range(0, len(keys), chunk), disable=not progress, desc="likelihood"):
        group = keys[s: s + chunk]
        values = modality.nll([k[0] for k in group], [k[1] for k in group])
        out.update({k: float(v) for k, v in zip(group, values)})
    return out


def _reference_score_pair(i: int, j: int, modality: Modality, opts: ScoreOptions) -> PairScore:
    """Slow, obviously correct per-pair CC:DAE: every description draw weighted by itself (no
    de-duplication, no cache, one likelihood call per term). Used to test score_pairs."""
    cs = list(range(opts.max_complexity + 1))
    curve = [0.0]
    for c in cs[1:]:
        h1 = [h for h in modality.describe([i], c, opts.samples, opts.temperature, opts.seed)[0] if h]
        h2 = [h for h in modality.describe([j], c, opts.samples, opts.temperature, opts.seed)[0] if h]
        if not h1 or not h2:
            curve.append(math.nan)
            continue

        def loss(x: int, h: Description, c: int = c) -> float:
            if opts.likelihood == "encoder":
                return -float(modality.desc_logprob([x], [h], c)[0])
            return float(modality.nll([x], [h])[0])

        l11, l21 = np.array([loss(i, h) for h in h1]), np.array([loss(j, h) for h in h1])
        l22, l12 = np.array([loss(j, h) for h in h2]), np.array([loss(i, h) for h in h2])
        w1 = description_weights(np.ones(len(h1)), l11, opts.weighting, opts.beta)
        w2 = description_weights(np.ones(len(h2)), l22, opts.weighting, opts.beta)
        d12 = sum(w * (a - b) for w, a, b in zip(w1, l21, l11))
        d21 = sum(w * (a - b) for w, a, b in zip(w2, l12, l22))
        curve.append(0.5 * (d12 + d21))
    auc = area_under_curve(cs, curve, opts.auc_norm)
    return PairScore(cs, curve, auc, -auc, separation_complexity(cs, curve, opts.sep_threshold))

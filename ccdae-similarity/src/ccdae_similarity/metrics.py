"""Evaluation statistics (experiments): rank correlations with human / ground-truth similarity and
two-alternative forced choice (2AFC) accuracy on triplets."""

from __future__ import annotations

import numpy as np


def rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (scipy.stats.rankdata 'average')."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    sorted_x = x[order]
    start = 0
    for end in range(1, len(x) + 1):
        if end == len(x) or sorted_x[end] != sorted_x[start]:
            ranks[order[start:end]] = (start + end + 1) / 2.0
            start = end
    return ranks


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) < 2:  # undefined (e.g. eval_max_pairs = 1): NaN without numpy's warnings
        return float("nan")
    xc, yc = x - x.mean(), y - y.mean()
    den = np.sqrt((xc**2).sum() * (yc**2).sum())
    return float((xc * yc).sum() / den) if den > 0 else float("nan")


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rho = Pearson correlation of average ranks (NaN pairs dropped)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    return pearson(rankdata(x[ok]), rankdata(y[ok]))


def kendall(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall tau-b (handles ties, as scipy.stats.kendalltau's default), O(n^2)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    dx = np.sign(x[:, None] - x[None, :])
    dy = np.sign(y[:, None] - y[None, :])
    iu = np.triu_indices(len(x), 1)
    dx, dy = dx[iu], dy[iu]
    concordant_minus_discordant = float((dx * dy).sum())
    den = np.sqrt(float((dx != 0).sum()) * float((dy != 0).sum()))
    return concordant_minus_discordant / den if den > 0 else float("nan")


def two_afc(sim_near: np.ndarray, sim_far: np.ndarray) -> float:
    """Fraction of triplets where the truly closer sample scores more similar (ties = 1/2)."""
    a, b = np.asarray(sim_near, np.float64), np.asarray(sim_far, np.float64)
    if a.size == 0:
        return float("nan")
    return float(np.mean((a > b) + 0.5 * (a == b)))


def ranking_accuracy(sim_same: np.ndarray, sim_diff: np.ndarray) -> float:
    """P(a concept-same pair scores above a concept-different pair) over all cross pairs (ROC AUC)."""
    a, b = np.asarray(sim_same, np.float64), np.asarray(sim_diff, np.float64)
    return two_afc(np.repeat(a, len(b)), np.tile(b, len(a)))

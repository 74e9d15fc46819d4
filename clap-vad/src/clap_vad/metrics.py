"""Frame-level evaluation (Sec. 5.1): UCF-Crime ROC AUC and XD-Violence average precision.

Each snippet covers 16 frames, so a snippet score is repeated 16 times before being compared
with the frame-level ground truth of the concatenated test videos (official `evaluate_ucf`).

AP: the official client computes `auc(recall, precision)` over `precision_recall_curve`, i.e. the
trapezoidal area under the PR curve (`frame_ap`, reported as "ap"). The XD-Violence benchmark's
usual AP is scikit-learn's step-wise `average_precision_score` (`frame_ap_sklearn`, reported as
"ap_sklearn"); the two differ by up to a few 1e-3 when scores tie.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
from sklearn.metrics import (
    auc,
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)


def expand_to_frames(snippet_scores: np.ndarray, frames_per_snippet: int = 16) -> np.ndarray:
    """[T] snippet scores -> [T * frames_per_snippet] frame scores."""
    return np.repeat(np.asarray(snippet_scores, dtype=np.float64), frames_per_snippet)


def frame_auc(frame_scores: np.ndarray, frame_gt: np.ndarray) -> float:
    """Frame-level ROC AUC; nan when the ground truth holds a single class."""
    gt = np.asarray(frame_gt)
    if gt.min() == gt.max():
        return float("nan")
    return float(roc_auc_score(gt, frame_scores))


def frame_ap(frame_scores: np.ndarray, frame_gt: np.ndarray) -> float:
    """Official AP: trapezoidal area under the precision-recall curve; nan without positives."""
    gt = np.asarray(frame_gt)
    if gt.max() == 0:
        return float("nan")
    precision, recall, _ = precision_recall_curve(gt, frame_scores)
    return float(auc(recall, precision))


def frame_ap_sklearn(frame_scores: np.ndarray, frame_gt: np.ndarray) -> float:
    """Step-wise average precision (scikit-learn); nan without positives."""
    gt = np.asarray(frame_gt)
    if gt.max() == 0:
        return float("nan")
    return float(average_precision_score(gt, frame_scores))


def _reference_ap_trapezoid(scores: np.ndarray, gt: np.ndarray) -> float:
    """Oracle for `frame_ap`: PR points at every distinct threshold, trapezoids by hand."""
    thresholds = np.unique(scores)[::-1]  # descending
    points = [(0.0, 1.0)]  # (recall, precision) at an infinite threshold, as scikit-learn adds
    for t in thresholds:
        pred = scores >= t
        tp = float((pred & (gt == 1)).sum())
        points.append((tp / (gt == 1).sum(), tp / pred.sum()))
    area = 0.0
    for (r0, p0), (r1, p1) in pairwise(points):
        area += (r1 - r0) * (p0 + p1) / 2
    return float(area)


def _reference_auc(scores: np.ndarray, gt: np.ndarray) -> float:
    """Mann-Whitney oracle: P(score_pos > score_neg) + 0.5 P(tie), by brute force."""
    pos, neg = scores[gt == 1], scores[gt == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (len(pos) * len(neg)))


def roc_points(frame_scores: np.ndarray, frame_gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    fpr, tpr, _ = roc_curve(frame_gt, frame_scores)
    return fpr, tpr

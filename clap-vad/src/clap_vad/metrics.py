"""Frame-level evaluation (Sec. 5.1): UCF-Crime ROC AUC and XD-Violence average precision.

Each snippet covers 16 frames, so a snippet score is repeated 16 times before being compared
with the frame-level ground truth of the concatenated test videos (official `evaluate_ucf`).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve


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
    """Frame-level average precision (XD-Violence protocol); nan without positives."""
    gt = np.asarray(frame_gt)
    if gt.max() == 0:
        return float("nan")
    return float(average_precision_score(gt, frame_scores))


def _reference_auc(scores: np.ndarray, gt: np.ndarray) -> float:
    """Mann-Whitney oracle: P(score_pos > score_neg) + 0.5 P(tie), by brute force."""
    pos, neg = scores[gt == 1], scores[gt == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (len(pos) * len(neg)))


def roc_points(frame_scores: np.ndarray, frame_gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    fpr, tpr, _ = roc_curve(frame_gt, frame_scores)
    return fpr, tpr

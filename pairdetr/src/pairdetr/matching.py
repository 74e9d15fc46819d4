"""The pair Hungarian matcher of PairDETR (approximated bipartite matching, Sec. 3).

Each query predicts one *pair* (body box + face box, 8 numbers) and a class. The matching cost
between query q and ground-truth pair t sums, over both boxes k in {body, face},

    C_k(q, t) = w_L1 * |b_k(q) - b_k(t)|_1 + w_cls * c_cls(q, t) + w_giou * (1 - GIoU(b_k(q), b_k(t)))

and C = C_body + C_face (so the class term enters twice), solved per image with scipy's
`linear_sum_assignment`. The class cost is the focal-style cost of Deformable-DETR,
    c_cls = alpha (1-p)^gamma (-log p) - (1-alpha) p^gamma (-log(1-p)),
with p the probability of the target class. As in the official matcher, p comes from a softmax
over the class logits (the last class is "no object", see losses.py). A body without a visible face
still forms a target; its face slot holds its head box and its class (1) says "no visible face".

The same code matches single boxes (box_dim 4) for the two-stage baseline.

Shapes: B batch, Q queries, C classes, T targets in one image, K boxes per query (1 or 2).
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from .boxes import box_cxcywh_to_xyxy, generalized_box_iou


def focal_class_cost(prob: torch.Tensor, labels: torch.Tensor, alpha: float = 0.25,
                     gamma: float = 2.0) -> torch.Tensor:
    """Focal-style classification cost.

    Args:
        prob: [N, C] class probabilities.
        labels: [T] target class ids.
    Returns:
        [N, T] cost (lower = better match).
    """
    neg = (1 - alpha) * prob**gamma * (-(1 - prob + 1e-8).log())
    pos = alpha * (1 - prob) ** gamma * (-(prob + 1e-8).log())
    return pos[:, labels] - neg[:, labels]


def pair_cost_matrix(logits: torch.Tensor, boxes: torch.Tensor, tgt_labels: torch.Tensor,
                     tgt_boxes: torch.Tensor, cost_class: float = 2.0, cost_bbox: float = 5.0,
                     cost_giou: float = 2.0) -> torch.Tensor:
    """Matching cost between N predictions and T targets, summed over the K boxes of a pair.

    Args:
        logits: [N, C] class logits.
        boxes: [N, 4K] predicted boxes, K groups of cxcywh in [0, 1] (body first, then face).
        tgt_labels: [T] class ids.
        tgt_boxes: [T, 4K] target boxes, same layout.
    Returns:
        [N, T] cost.
    """
    assert boxes.shape[-1] == tgt_boxes.shape[-1] and boxes.shape[-1] % 4 == 0, (
        boxes.shape, tgt_boxes.shape)
    prob = logits.softmax(-1)  # official matcher: softmax over (pair, body-only, no-object)
    cls = focal_class_cost(prob, tgt_labels)  # [N, T]
    total = torch.zeros_like(cls)
    for k in range(boxes.shape[-1] // 4):
        pred_k, tgt_k = boxes[:, 4 * k:4 * k + 4], tgt_boxes[:, 4 * k:4 * k + 4]
        l1 = torch.cdist(pred_k, tgt_k, p=1)  # [N, T]
        giou = generalized_box_iou(box_cxcywh_to_xyxy(pred_k), box_cxcywh_to_xyxy(tgt_k))
        total = total + cost_bbox * l1 + cost_class * cls + cost_giou * (1 - giou)
    return total


class PairHungarianMatcher(torch.nn.Module):
    """One-to-one assignment of queries to ground-truth pairs (official weights 2 / 5 / 2)."""

    def __init__(self, cost_class: float = 2.0, cost_bbox: float = 5.0, cost_giou: float = 2.0):
        super().__init__()
        assert cost_class or cost_bbox or cost_giou, "all matching costs are 0"
        self.cost_class, self.cost_bbox, self.cost_giou = cost_class, cost_bbox, cost_giou

    @torch.no_grad()
    def forward(self, outputs: dict, targets: list[dict]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Match each image's queries to its targets.

        Args:
            outputs: "pred_logits" [B, Q, C], "pred_boxes" [B, Q, 4K].
            targets: B dicts with "labels" [T_b] and "boxes" [T_b, 4K].
        Returns:
            B tuples (query_idx [M_b], target_idx [M_b]) int64, M_b = min(Q, T_b).
        """
        logits, boxes = outputs["pred_logits"], outputs["pred_boxes"]
        batch, num_queries = logits.shape[:2]
        sizes = [len(t["labels"]) for t in targets]
        if sum(sizes) == 0:
            empty = torch.empty(0, dtype=torch.int64)
            return [(empty, empty) for _ in targets]
        cost = pair_cost_matrix(
            logits.flatten(0, 1), boxes.flatten(0, 1),
            torch.cat([t["labels"] for t in targets]), torch.cat([t["boxes"] for t in targets]),
            self.cost_class, self.cost_bbox, self.cost_giou,
        )  # [B*Q, sum T]
        cost = cost.view(batch, num_queries, -1).float().cpu()
        if not torch.isfinite(cost).all():
            raise FloatingPointError("non-finite matching cost: NaN/inf in the predictions")
        indices = []
        for b, block in enumerate(cost.split(sizes, dim=-1)):
            rows, cols = linear_sum_assignment(block[b].numpy())
            indices.append((torch.as_tensor(rows, dtype=torch.int64),
                            torch.as_tensor(cols, dtype=torch.int64)))
        return indices


def _reference_brute_force_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Optimal assignment of a small [Q, T] (Q >= T) cost by trying every injection T -> Q."""
    num_queries, num_targets = cost.shape
    assert num_queries >= num_targets, cost.shape
    best, best_rows = np.inf, None
    for rows in itertools.permutations(range(num_queries), num_targets):
        total = cost[list(rows), list(range(num_targets))].sum()
        if total < best:
            best, best_rows = total, rows
    rows = np.asarray(best_rows, dtype=np.int64)
    cols = np.arange(num_targets)
    order = np.argsort(rows)
    return rows[order], cols[order], float(best)

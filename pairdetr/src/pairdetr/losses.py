"""Set criterion of PairDETR (DETR-style losses over matched pairs, Sec. 3 / official config).

Classes: the class head has C logits; the last one is an explicit "no object" class that unmatched
queries are trained towards (official layout: C = 3 = {pair with visible face, body without
visible face, no object}; for the two-stage baseline {body, face, no object}).

Losses, each normalised by the number of ground-truth pairs N (all-reduced under DDP):
  loss_ce   = sigmoid focal loss (alpha 0.25, gamma 2) summed over queries and classes / N;
  loss_bbox = L1 over the 4K box numbers of matched queries / N;
  loss_giou = sum over the K boxes of matched pairs of (1 - GIoU) / N.
Total = 2 loss_ce + 5 loss_bbox + 2 loss_giou (official weights), plus the same terms on every
intermediate decoder layer when auxiliary outputs are present (suffix `_<layer>`).
`class_error` and `cardinality_error` are logged without gradient.

Shapes: B batch, Q queries, C classes, M matched queries, K boxes per query.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import distributed as dist

from .boxes import box_cxcywh_to_xyxy, generalized_box_iou
from .matching import PairHungarianMatcher


def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor, num_boxes: float,
                       alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """Focal loss (Lin et al. 2017) summed over all elements and divided by `num_boxes`.

    Args:
        logits, targets: [B, Q, C]; targets are 0/1.
    """
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss.sum() / num_boxes


class SetCriterion(torch.nn.Module):
    """Hungarian-matched set losses for pair (box_dim 8) or single-box (box_dim 4) queries."""

    def __init__(self, matcher: PairHungarianMatcher, weight_dict: dict[str, float],
                 focal_alpha: float = 0.25, focal_gamma: float = 2.0):
        super().__init__()
        self.matcher = matcher
        self.weight_dict = dict(weight_dict)
        self.focal_alpha, self.focal_gamma = focal_alpha, focal_gamma

    @staticmethod
    def _src_idx(indices: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, ...]:
        batch_idx = torch.cat([torch.full_like(src, i) for i, (src, _) in enumerate(indices)])
        return batch_idx, torch.cat([src for src, _ in indices])

    def loss_labels(self, outputs: dict, targets: list[dict], indices: list, num_boxes: float,
                    log: bool = True) -> dict[str, torch.Tensor]:
        logits = outputs["pred_logits"]  # [B, Q, C]
        no_object = logits.shape[-1] - 1
        idx = self._src_idx(indices)
        matched_classes = torch.cat([t["labels"][j] for t, (_, j) in zip(targets, indices)])
        target_classes = torch.full(logits.shape[:2], no_object, dtype=torch.int64,
                                    device=logits.device)  # [B, Q]
        target_classes[idx] = matched_classes.to(logits.device)
        onehot = F.one_hot(target_classes, logits.shape[-1]).to(logits.dtype)  # [B, Q, C]
        losses = {"loss_ce": sigmoid_focal_loss(logits, onehot, num_boxes, self.focal_alpha,
                                                self.focal_gamma)}
        if log:
            with torch.no_grad():
                if matched_classes.numel():
                    correct = (logits[idx].argmax(-1) == matched_classes.to(logits.device))
                    losses["class_error"] = 100.0 - 100.0 * correct.float().mean()
                else:
                    losses["class_error"] = torch.zeros((), device=logits.device)
                predicted = (logits.argmax(-1) != no_object).sum(1).float()  # [B]
                truth = torch.as_tensor([float(len(t["labels"])) for t in targets],
                                        device=logits.device)
                losses["cardinality_error"] = (predicted - truth).abs().mean()
        return losses

    def loss_boxes(self, outputs: dict, targets: list[dict], indices: list,
                   num_boxes: float) -> dict[str, torch.Tensor]:
        idx = self._src_idx(indices)
        src = outputs["pred_boxes"][idx]  # [M, 4K]
        tgt = torch.cat([t["boxes"][j] for t, (_, j) in zip(targets, indices)]).to(src)
        loss_bbox = F.l1_loss(src, tgt, reduction="none").sum() / num_boxes
        src_k = src.reshape(-1, 4)  # [M*K, 4] body and face boxes stacked
        tgt_k = tgt.reshape(-1, 4)
        if src_k.shape[0]:
            giou = torch.diag(generalized_box_iou(box_cxcywh_to_xyxy(src_k),
                                                  box_cxcywh_to_xyxy(tgt_k)))
            loss_giou = (1 - giou).sum() / num_boxes
        else:
            loss_giou = src.sum() * 0.0
        return {"loss_bbox": loss_bbox, "loss_giou": loss_giou}

    def _num_boxes(self, targets: list[dict], device: torch.device) -> float:
        num = torch.as_tensor([float(sum(len(t["labels"]) for t in targets))], device=device)
        world = 1
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(num)
            world = dist.get_world_size()
        return max(num.item() / world, 1.0)

    def forward(self, outputs: dict, targets: list[dict]) -> dict[str, torch.Tensor]:
        """Compute all losses.

        Args:
            outputs: "pred_logits" [B, Q, C], "pred_boxes" [B, Q, 4K], optional "aux_outputs"
                (list of dicts with the same keys, one per intermediate decoder layer).
            targets: B dicts with "labels" [T_b] int64 and "boxes" [T_b, 4K] cxcywh in [0, 1].
        Returns:
            dict of scalar losses; "loss" is the weighted total used for backprop.
        """
        num_boxes = self._num_boxes(targets, outputs["pred_logits"].device)
        stages = [("", outputs, True)]
        stages += [(f"_{i}", aux, False) for i, aux in enumerate(outputs.get("aux_outputs", []))]
        losses: dict[str, torch.Tensor] = {}
        for suffix, out, log in stages:
            indices = self.matcher(out, targets)
            terms = {**self.loss_labels(out, targets, indices, num_boxes, log=log),
                     **self.loss_boxes(out, targets, indices, num_boxes)}
            losses.update({k + suffix: v for k, v in terms.items()})
        losses["loss"] = sum(v * self.weight_dict[k.rsplit("_", 1)[0] if k[-1].isdigit() else k]
                             for k, v in losses.items()
                             if (k.rsplit("_", 1)[0] if k[-1].isdigit() else k) in self.weight_dict)
        return losses

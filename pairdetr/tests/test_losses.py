import math

import torch

from pairdetr.losses import SetCriterion, sigmoid_focal_loss
from pairdetr.matching import PairHungarianMatcher

WEIGHTS = {"loss_ce": 2.0, "loss_bbox": 5.0, "loss_giou": 2.0}


def _perfect_outputs(targets, queries=5, classes=3):
    logits = torch.full((len(targets), queries, classes), -30.0)
    logits[..., -1] = 30.0  # unmatched queries: confident "no object"
    boxes = torch.rand(len(targets), queries, 8) * 0.2 + 0.4
    for b, t in enumerate(targets):
        n = len(t["labels"])
        boxes[b, :n] = t["boxes"]
        logits[b, :n] = -30.0
        logits[b, torch.arange(n), t["labels"]] = 30.0
    return {"pred_logits": logits, "pred_boxes": boxes}


def test_criterion_is_zero_for_perfect_predictions():
    targets = [{"labels": torch.tensor([0, 1]),
                "boxes": torch.tensor([[0.3, 0.5, 0.2, 0.6, 0.3, 0.25, 0.05, 0.06],
                                       [0.7, 0.5, 0.2, 0.5, 0.7, 0.3, 0.06, 0.07]])},
               {"labels": torch.tensor([0]),
                "boxes": torch.tensor([[0.5, 0.5, 0.3, 0.8, 0.5, 0.2, 0.1, 0.1]])}]
    outputs = _perfect_outputs(targets)
    outputs["aux_outputs"] = [_perfect_outputs(targets)]
    losses = SetCriterion(PairHungarianMatcher(), WEIGHTS)(outputs, targets)
    assert losses["loss"].item() < 1e-6, losses
    assert "loss_ce_0" in losses and "loss_giou_0" in losses
    assert losses["class_error"].item() == 0 and losses["cardinality_error"].item() == 0


def test_criterion_positive_and_differentiable_for_random_predictions():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 6, 3, generator=g, requires_grad=True)
    boxes = torch.rand(1, 6, 8, generator=g).requires_grad_(True)
    targets = [{"labels": torch.tensor([0, 1]), "boxes": torch.rand(2, 8, generator=g) * 0.5 + 0.25}]
    losses = SetCriterion(PairHungarianMatcher(), WEIGHTS)({"pred_logits": logits,
                                                            "pred_boxes": boxes}, targets)
    assert losses["loss"].item() > 0
    losses["loss"].backward()
    assert torch.isfinite(logits.grad).all() and boxes.grad.abs().sum() > 0


def test_criterion_zero_targets_only_classification():
    outputs = {"pred_logits": torch.zeros(1, 4, 3, requires_grad=True),
               "pred_boxes": torch.rand(1, 4, 8, requires_grad=True)}
    targets = [{"labels": torch.zeros(0, dtype=torch.int64), "boxes": torch.zeros(0, 8)}]
    losses = SetCriterion(PairHungarianMatcher(), WEIGHTS)(outputs, targets)
    assert losses["loss_bbox"].item() == 0 and losses["loss_ce"].item() > 0
    losses["loss"].backward()


def test_focal_loss_hand_value():
    # one logit 0 (p = 0.5), target 1: ce = ln 2, (1 - p_t)^2 = 1/4, alpha_t = 0.25
    loss = sigmoid_focal_loss(torch.zeros(1, 1, 1), torch.ones(1, 1, 1), num_boxes=1)
    torch.testing.assert_close(loss, torch.tensor(0.25 * 0.25 * math.log(2.0)))

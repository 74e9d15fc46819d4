"""Evaluation: DomainBed training-domain validation (model selection, SWAD's loss signal) and
held-out-domain accuracy of any predict(images) -> logits function."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .data import MultiDomainData, Split, iterate_eval
from .model import Student


@torch.no_grad()
def accuracy(predict, data: MultiDomainData, env: int, idx: np.ndarray, batch_size: int,
             device: torch.device) -> tuple[float, float]:
    """(top-1 accuracy, mean cross-entropy) of predict(images [B, 3, S, S]) -> logits [B, C] on
    domain env, idx (official evaluator: accuracy and loss of `algorithm.predict`)."""
    correct, loss_sum = 0, 0.0
    for x, y in iterate_eval(data, env, idx, batch_size):
        logits = predict(x.to(device)).cpu()
        correct += int((logits.argmax(-1) == y).sum())
        loss_sum += float(F.cross_entropy(logits.float(), y, reduction="sum"))
    return correct / max(len(idx), 1), loss_sum / max(len(idx), 1)


def domain_accuracies(predict, data: MultiDomainData, split: Split, batch_size: int,
                      device: torch.device) -> dict[str, float]:
    """Training domains on their validation ("out") part, the held-out domain on all of it;
    id_acc = mean over training domains (model selection), ood_acc = held-out domain,
    val_loss = mean cross-entropy over the training domains' validation parts (SWAD's signal,
    official `tr_outloss`)."""
    out, losses = {}, []
    for e, idx in split.val:
        out[f"acc_{data.domains[e]}"], loss = accuracy(predict, data, e, idx, batch_size, device)
        losses.append(loss)
    out["id_acc"] = float(np.mean(list(out.values())))
    out["val_loss"] = float(np.mean(losses))
    test_env, test_idx = split.test
    out[f"acc_{data.domains[test_env]}"], _ = accuracy(predict, data, test_env, test_idx,
                                                       batch_size, device)
    out["ood_acc"] = out[f"acc_{data.domains[test_env]}"]
    return out


def eval_model(model: Student, *args) -> dict[str, float]:
    model.eval()
    return domain_accuracies(model, *args)

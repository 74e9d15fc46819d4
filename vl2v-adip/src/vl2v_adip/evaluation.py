"""Evaluation: DomainBed training-domain validation (model selection, SWAD's loss signal) and
held-out-domain accuracy of any predict(images) -> logits function; re-evaluation of a run from
its checkpoint (eval.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .data import MultiDomainData, Split, iterate_eval, leave_one_domain_out
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
    """Training domains on their validation ("out") part, the held-out domain on its "in" part;
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


def evaluate_checkpoint(ckpt_path: str | Path, overrides: dict[str, str] | None = None) -> dict:
    """Re-evaluate a run's final model and the teacher's zero-shot on the same split;
    `overrides` (device, eval_batch_size, data_root) change where and how, not what."""
    from .components import build_data, rebuild_from_checkpoint
    from .config import config_from_dict
    from .runtime import load_checkpoint, resolve_device

    ckpt = load_checkpoint(ckpt_path)
    if overrides:  # checked on their own first, so a bad value is reported as such
        checked = dataclasses.asdict(config_from_dict(overrides, where="command line"))
        ckpt = dict(ckpt, config={**ckpt["config"], **{k: checked[k] for k in overrides}})
    cfg, model, teacher = rebuild_from_checkpoint(ckpt)
    device = resolve_device(cfg.device)
    data = build_data(cfg)
    split = leave_one_domain_out([len(e) for e in data.envs], cfg.test_domain,
                                 cfg.holdout_fraction, cfg.trial_seed)
    eval_args = (data, split, cfg.eval_batch_size, device)
    out: dict = {"method": cfg.method, "teacher_access": cfg.teacher_access,
                 "test_domain": data.domains[cfg.test_domain], "domains": data.domains}
    if teacher is not None:
        teacher.to(device).eval()
        emb = teacher.class_embeddings(data.classes, cfg.prompt_templates).to(device)
        scale = teacher.scale()
        out["teacher_zeroshot"] = domain_accuracies(
            lambda x: scale * teacher.encode_image(x) @ emb.t(), *eval_args)
    if model is not None:
        out["student"] = eval_model(model.to(device), *eval_args)
        out["selected_step"] = ckpt["selected"]["step"] if ckpt.get("selected") else ckpt["step"]
        out["final_model"] = "swad" if ckpt.get("swad_model") else "selected"
    return out

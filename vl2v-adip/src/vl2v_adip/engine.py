"""Training and evaluation: ERM, naive KD, VL2V-ADiP (black-box: Align then Distill; white-box:
VL2V-SD) and the teacher's zero-shot baseline, with DomainBed leave-one-domain-out splits and
training-domain validation model selection.

Stages of black-box VL2V-ADiP (official DFC_STAGE1 / DFC_STAGE2, Sec. 4):
  steps [0, align_steps): Align   - only the projection is trained, backbone frozen (eval mode);
  steps [align_steps, +steps): Distill - the projection is frozen, the backbone is trained.
Both use `alignment_loss` against the teacher's image embedding and the label's text embedding;
Predict = the text-embedding classifier on the projected feature.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import trange

from .components import build_data, build_student, prepare_teacher, student_weights
from .config import Config, config_to_json
from .data import (
    collate,
    leave_one_domain_out,
    sample_batch_indices,
)
from .evaluation import domain_accuracies, eval_model
from .losses import alignment_loss, cutmix_alignment_loss, cutmix_box, kd_loss
from .model import Student
from .runtime import (
    MetricsLogger,
    load_checkpoint,
    make_run_dir,
    resolve_device,
    save_checkpoint,
    seed_everything,
    set_determinism,
)
from .swad import LossValley, swad_model
from .teacher import BlackBoxTeacher


def stage_of(cfg: Config, step: int) -> str:
    """'align' | 'distill' (adip) or 'train' (erm, kd)."""
    if cfg.method != "adip":
        return "train"
    if cfg.teacher_access == "black_box" and step < cfg.align_steps:
        return "align"
    return "distill"


def total_steps(cfg: Config) -> int:
    align = cfg.align_steps if cfg.method == "adip" and cfg.teacher_access == "black_box" else 0
    return align + cfg.steps


def make_optimizer(cfg: Config, model: Student, stage: str) -> torch.optim.Optimizer:
    """Adam on the stage's trainable parameters (official: Adam, DomainBed lr / weight decay)."""
    model.requires_grad_(False)
    if stage == "align":
        params, lr = list(model.proj.parameters()), cfg.align_lr
    elif stage == "distill":
        params, lr = list(model.backbone.parameters()), cfg.lr
    else:
        params, lr = list(model.parameters()), cfg.lr
    for p in params:
        p.requires_grad_(True)
    return torch.optim.Adam(params, lr=lr, weight_decay=cfg.weight_decay)


def train_step(cfg: Config, model: Student, opt: torch.optim.Optimizer, oracle: BlackBoxTeacher,
               class_emb: torch.Tensor, x: torch.Tensor, y: torch.Tensor, stage: str,
               rng: np.random.Generator) -> dict[str, float]:
    """One optimisation step; returns the loss terms. x [B, 3, S, S] in [0, 1], y [B]."""
    model.train()
    if stage == "align":
        model.backbone.eval()  # frozen backbone: BN statistics stay those of pre-training
    if cfg.method == "erm":
        loss = F.cross_entropy(model(x), y)
        terms = {"loss": loss}
    elif cfg.method == "kd":
        t_logits = oracle.scale() * oracle.image_embeddings(x) @ class_emb.t()  # [B, C]
        s_logits = model(x)
        ce, kd = F.cross_entropy(s_logits, y), kd_loss(s_logits, t_logits, cfg.kd_temperature)
        loss = (1 - cfg.kd_alpha) * ce + cfg.kd_alpha * kd
        terms = {"loss": loss, "ce": ce, "kd": kd}
    else:  # adip: Align / Distill (Sec. 4.1-4.2)
        if cfg.cutmix_beta > 0 and rng.random() < cfg.cutmix_prob:
            lam = rng.beta(cfg.cutmix_beta, cfg.cutmix_beta)
            perm = torch.from_numpy(rng.permutation(len(x))).to(x.device)
            y1, y2, x1, x2, lam = cutmix_box(x.shape[-2], x.shape[-1], lam, rng)
            x = x.clone()
            x[:, :, y1:y2, x1:x2] = x[perm, :, y1:y2, x1:x2]
            loss = cutmix_alignment_loss(model.embed(x), oracle.image_embeddings(x),
                                         class_emb[y], class_emb[y[perm]], lam, cfg.lmd)
        else:
            loss = alignment_loss(model.embed(x), oracle.image_embeddings(x), class_emb[y],
                                  cfg.lmd)
        terms = {"loss": loss}
    values = {k: float(v.detach()) for k, v in terms.items()}
    if not all(math.isfinite(v) for v in values.values()):
        raise FloatingPointError(f"non-finite loss at stage {stage}: {values}")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return values


def fit(cfg: Config) -> dict:
    """Train one method on one leave-one-domain-out split; returns the final model's metrics
    (the SWAD average when `swad` is on, else the training-domain-validation selection)."""
    seed_everything(cfg.seed)
    set_determinism(cfg.deterministic)
    device = resolve_device(cfg.device)
    run_dir = make_run_dir(cfg.out_dir, cfg.config_name)
    (run_dir / "config.json").write_text(config_to_json(cfg))
    print(config_to_json(cfg))
    data = build_data(cfg)
    split = leave_one_domain_out([len(e) for e in data.envs], cfg.test_domain,
                                 cfg.holdout_fraction, cfg.seed)
    teacher, teacher_file = prepare_teacher(cfg, data, run_dir)
    teacher.to(device)
    oracle = BlackBoxTeacher(teacher)  # black-box view: the only teacher access during training
    class_emb = oracle.class_embeddings(data.classes).to(device)  # [C, D]
    meta = {"classes": data.classes, "domains": data.domains, "embed_dim": oracle.embed_dim,
            "teacher_file": teacher_file}
    logger = MetricsLogger(run_dir, cfg.wandb, dataclasses.asdict(cfg), project="vl2v-adip")
    eval_args = (data, split, cfg.eval_batch_size, device)
    zs = domain_accuracies(lambda x: class_emb.new_tensor(oracle.scale()) * oracle.image_embeddings(
        x) @ class_emb.t(), *eval_args)
    logger.log(0, "teacher_zeroshot", **zs)
    if cfg.method == "zeroshot":
        save_checkpoint(run_dir / "ckpt" / "last.pt", step=0, config=dataclasses.asdict(cfg),
                        meta=meta, model=None, selected=None)
        logger.close()
        return {**zs, "run_dir": str(run_dir)}
    if cfg.teacher_access == "white_box" and cfg.method != "adip":
        raise ValueError("teacher_access=white_box is defined for method=adip (VL2V-SD) only")
    wb_teacher = teacher if cfg.teacher_access == "white_box" else None  # white-box: weights read
    model = build_student(cfg, len(data.classes), oracle, class_emb, wb_teacher,
                          student_weights(cfg, run_dir)).to(device)
    state = _train(cfg, model, oracle, class_emb, eval_args, logger, run_dir, meta)
    logger.close()
    selected, swad = state["selected"], state["swad"]
    result = dict(selected["metrics"]) if selected else eval_model(model, *eval_args)
    result["selected_step"] = selected["step"] if selected else state["step"]
    if swad is not None:  # the method's final model is the SWAD average (official --swad True)
        result = {"selected_id_acc": result["id_acc"], "selected_ood_acc": result["ood_acc"],
                  "selected_step": result["selected_step"], **state["swad_metrics"],
                  **swad.summary()}
    result.update(teacher_ood_acc=zs["ood_acc"], teacher_id_acc=zs["id_acc"],
                  teacher_queries=oracle.num_image_queries, run_dir=str(run_dir))
    return result


def _train(cfg: Config, model: Student, oracle, class_emb, eval_args, logger, run_dir: Path,
           meta: dict) -> dict:
    """The step loop (Align -> Distill for black-box adip), with resume, model selection and
    SWAD; eval_args = (data, split, eval batch size, device). Returns {"step", "selected",
    "swad", "swad_metrics"}."""
    data, split, _, device = eval_args
    start, stage, selected, best_align = 0, stage_of(cfg, 0), None, None
    opt = make_optimizer(cfg, model, stage)
    swad = LossValley(cfg.swad_n_converge, cfg.swad_n_tolerance, cfg.swad_tolerance_ratio) \
        if cfg.swad else None
    last_path = run_dir / "ckpt" / "last.pt"
    if last_path.is_file():  # resume
        start, stage, selected, best_align, opt = _resume(cfg, last_path, model, swad)

    def save(**extra) -> None:  # the loop's current state (read when called)
        save_checkpoint(last_path, **{
            "step": done, "stage": stage, "config": dataclasses.asdict(cfg), "meta": meta,
            "model": model.state_dict(), "optimizer": opt.state_dict(), "selected": selected,
            "best_align": best_align, "swad": swad.state_dict() if swad else None, **extra})
    n_total, done = total_steps(cfg), start
    for step in (bar := trange(start, n_total, desc=f"{cfg.method}", initial=start,
                               total=n_total)):
        if swad is not None and swad.dead:
            break
        if stage_of(cfg, step) != stage:  # Align -> Distill: freeze proj, train backbone
            stage = stage_of(cfg, step)
            if best_align is not None:  # official stage 2 starts from stage 1's TE*_best.pth
                model.load_state_dict(best_align["model"])
            opt = make_optimizer(cfg, model, stage)
        picks = sample_batch_indices(split.train, cfg.batch_size, step, cfg.seed)
        x, y, _ = collate(data, picks, augment=True)
        rng = np.random.default_rng([cfg.seed, step, 11])
        terms = train_step(cfg, model, opt, oracle, class_emb, x.to(device), y.to(device),
                           stage, rng)
        done = step + 1
        if swad is not None and stage != "align":
            swad.accumulate(model, done)
        if done % cfg.log_every == 0 or done == n_total:
            logger.log(done, "train", progress=bar, stage_id=float(stage != "align"), **terms)
        if done % cfg.eval_every == 0 or done == n_total:
            ev = eval_model(model, *eval_args)
            logger.log(done, "val", **ev)
            # training-domain validation model selection, per stage
            if stage == "align" and (best_align is None or ev["id_acc"] > best_align["id_acc"]):
                best_align = _snapshot(done, ev, model)
            if stage != "align" and (selected is None or ev["id_acc"] > selected["id_acc"]):
                selected = _snapshot(done, ev, model)
            if swad is not None and stage != "align":
                swad.close_segment(ev["val_loss"])
                if swad.dead:
                    print(f"SWAD: validation loss left the valley at step {done}; stopping")
        if done % cfg.save_every == 0 and done < n_total:
            save()
    if swad is None:
        save()
        return {"step": done, "selected": selected, "swad": None, "swad_metrics": {}}
    trained = swad.state_dict()  # the checkpoint keeps the SWAD state as training left it
    metrics, averaged = _finish_swad(cfg, swad, model, eval_args)
    save(swad=trained, swad_model=averaged, swad_summary=swad.summary())
    return {"step": done, "selected": selected, "swad": swad, "swad_metrics": metrics}


def _resume(cfg: Config, path: Path, model: Student, swad: LossValley | None):
    """(step, stage, selected, best_align, optimizer) restored from a checkpoint."""
    ckpt = load_checkpoint(path)
    model.load_state_dict(ckpt["model"], strict=True)
    opt = make_optimizer(cfg, model, ckpt["stage"])
    opt.load_state_dict(ckpt["optimizer"])
    if swad is not None:
        swad.load_state_dict(ckpt["swad"])
    print(f"resumed from {path} at step {ckpt['step']} ({ckpt['stage']})")
    return ckpt["step"], ckpt["stage"], ckpt["selected"], ckpt.get("best_align"), opt


def _finish_swad(cfg: Config, swad: LossValley, model: Student, eval_args) -> tuple[dict, dict]:
    """Average the selected steps, recompute BatchNorm statistics on training batches and
    evaluate; returns (metrics, state dict of the SWAD model), which the final checkpoint keeps
    (eval.py then evaluates it)."""
    data, split = eval_args[0], eval_args[1]
    swad.finalize()
    params = swad.averaged_parameters()
    averaged = copy.deepcopy(model)
    if params is not None:
        batches = (collate(data, sample_batch_indices(split.train, cfg.batch_size,
                                                      total_steps(cfg) + i, cfg.seed),
                           augment=True)[0] for i in range(cfg.swad_bn_steps))
        averaged = swad_model(averaged, params, batches)
    return eval_model(averaged, *eval_args), averaged.state_dict()


def _snapshot(step: int, metrics: dict, model: nn.Module) -> dict:
    return {"step": step, "id_acc": metrics["id_acc"], "metrics": metrics,
            "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}


def evaluate(ckpt_path: str | Path) -> dict:
    """Re-evaluate a run's selected model and the teacher's zero-shot on the same split."""
    from .components import rebuild_from_checkpoint

    ckpt = load_checkpoint(ckpt_path)
    cfg, model, teacher = rebuild_from_checkpoint(ckpt)
    device = resolve_device(cfg.device)
    data = build_data(cfg)
    split = leave_one_domain_out([len(e) for e in data.envs], cfg.test_domain,
                                 cfg.holdout_fraction, cfg.seed)
    eval_args = (data, split, cfg.eval_batch_size, device)
    out: dict = {"method": cfg.method, "teacher_access": cfg.teacher_access,
                 "test_domain": data.domains[cfg.test_domain], "domains": data.domains}
    if teacher is not None:
        teacher.to(device).eval()
        emb = teacher.class_embeddings(data.classes).to(device)
        scale = teacher.scale()
        out["teacher_zeroshot"] = domain_accuracies(
            lambda x: scale * teacher.encode_image(x) @ emb.t(), *eval_args)
    if model is not None:
        out["student"] = eval_model(model.to(device), *eval_args)
        out["selected_step"] = ckpt["selected"]["step"] if ckpt.get("selected") else ckpt["step"]
        out["final_model"] = "swad" if ckpt.get("swad_model") else "selected"
    return out

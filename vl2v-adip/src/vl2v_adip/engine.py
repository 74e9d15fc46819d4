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
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from .components import build_data, build_student, prepare_teacher, student_weights
from .config import Config, config_diff, config_to_json, swad_mode_of
from .data import (
    collate,
    leave_one_domain_out,
    sample_batch_indices,
)
from .evaluation import domain_accuracies, eval_model
from .evaluation import evaluate_checkpoint as evaluate  # noqa: F401  (eval.py, tests)
from .losses import alignment_loss, cutmix_alignment_loss, cutmix_box, kd_loss
from .model import Student
from .runtime import (
    CheckpointError,
    MetricsLogger,
    make_run_dir,
    resolve_device,
    resume_checkpoint,
    rng_state,
    save_checkpoint,
    seed_everything,
    set_determinism,
    set_rng_state,
)
from .swad import Swad, swad_model
from .teacher import BlackBoxTeacher


def stages_of(cfg: Config) -> list[tuple[str, int, int]]:
    """(stage, global step offset, steps) in order: black-box adip = Align then Distill (the
    official stage-1 and stage-2 runs); white-box adip (VL2V-SD) = Distill; erm / kd = train."""
    if cfg.method != "adip":
        return [("train", 0, cfg.steps)]
    if cfg.teacher_access == "black_box":
        return [("align", 0, cfg.align_steps), ("distill", cfg.align_steps, cfg.steps)]
    return [("distill", 0, cfg.steps)]


def total_steps(cfg: Config) -> int:
    return sum(n for _, _, n in stages_of(cfg))


def freeze_batchnorm(module: nn.Module) -> None:
    """BatchNorm layers to eval mode: running statistics stay those of pre-training (DomainBed
    ResNet `freeze_bn`, re-applied after every `train()`); their affine weights still train."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


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
    elif cfg.freeze_bn:
        freeze_batchnorm(model)
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
    data = build_data(cfg)
    split = leave_one_domain_out([len(e) for e in data.envs], cfg.test_domain,
                                 cfg.holdout_fraction, cfg.trial_seed)
    (run_dir / "config.json").write_text(config_to_json(cfg))
    print(config_to_json(cfg))
    teacher, teacher_file = prepare_teacher(cfg, data, run_dir)
    teacher.to(device)
    oracle = BlackBoxTeacher(teacher)  # black-box view: the only teacher access during training
    class_emb = oracle.class_embeddings(data.classes, cfg.prompt_templates).to(device)  # [C, D]
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
                  teacher_queries=oracle.num_image_queries, steps_done=state["step"],
                  run_dir=str(run_dir))
    return result


LOOP_KEYS = ("stage_index", "stage_step", "selected", "best_align", "align_max")


def _new_swad(cfg: Config, stage: str) -> Swad | None:
    """SWAD of a stage (official: --swad True in both stage runs); in Align only its early stop
    matters, so it tracks losses, not weights."""
    if not cfg.swad:
        return None
    return Swad(swad_mode_of(cfg), cfg.swad_valley, cfg.swad_n_converge, cfg.swad_n_tolerance,
                cfg.swad_tolerance_ratio, track_weights=stage != "align")


def _train(cfg: Config, model: Student, oracle, class_emb, eval_args, logger, run_dir: Path,
           meta: dict) -> dict:
    """The stage loops (Align -> Distill for black-box adip), with resume, model selection and
    SWAD; eval_args = (data, split, eval batch size, device). Returns {"step", "selected",
    "swad", "swad_metrics"}."""
    data, split, _, device = eval_args
    stages = stages_of(cfg)
    loop = {"stage_index": 0, "stage_step": 0, "selected": None, "best_align": None,
            "align_max": -1.0}
    opt, swad = None, None
    ckpt = resume_checkpoint(run_dir / "ckpt")
    if ckpt is not None:
        loop, opt, swad = _resume(cfg, ckpt, model, stages, device)
    last_path = run_dir / "ckpt" / "last.pt"
    bar = tqdm(total=total_steps(cfg), desc=cfg.method,
               initial=stages[loop["stage_index"]][1] + loop["stage_step"])

    def save(**extra) -> None:  # the loop's current state
        stage, offset, _ = stages[loop["stage_index"]]
        state = {"step": offset + loop["stage_step"], "stage": stage,
                 "config": dataclasses.asdict(cfg), "meta": meta, "model": model.state_dict(),
                 "optimizer": opt.state_dict(), "swad": swad.state_dict() if swad else None,
                 "rng": rng_state(), **loop}
        save_checkpoint(last_path, **{**state, **extra})
    for index in range(loop["stage_index"], len(stages)):
        stage, offset, n = stages[index]
        if opt is None or index != loop["stage_index"]:  # a stage starts
            loop.update(stage_index=index, stage_step=0)
            if stage == "distill" and offset > 0:  # official stage 2 loads stage 1's TE*_best
                _start_distill(cfg, model, loop["best_align"])
            opt, swad = make_optimizer(cfg, model, stage), _new_swad(cfg, stage)
        for t in range(loop["stage_step"] + 1, n + 1):
            if swad is not None and swad.dead:
                break
            step = offset + t  # global step (1-based); batches depend on it only
            x, y, _ = collate(data, sample_batch_indices(split.train, cfg.batch_size, step - 1,
                                                         cfg.seed), augment=True)
            rng = np.random.default_rng([cfg.seed, step - 1, 11])
            terms = train_step(cfg, model, opt, oracle, class_emb, x.to(device), y.to(device),
                               stage, rng)
            loop["stage_step"] = t
            bar.update(1)
            if swad is not None:
                swad.accumulate(model, t)
            if step % cfg.log_every == 0 or t == n:
                if device.type == "cuda":
                    terms["cuda_max_mem_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
                logger.log(step, "train", progress=bar, stage_id=float(stage != "align"),
                           **terms)
            if t % cfg.eval_every == 0 or t == n:
                _validate(cfg, loop, (stage, step, t), model, swad, eval_args, logger)
            if step % cfg.save_every == 0 and not (index == len(stages) - 1 and t == n):
                save()
    bar.close()
    done = stages[loop["stage_index"]][1] + loop["stage_step"]
    if swad is None:
        save()
        return {"step": done, "selected": loop["selected"], "swad": None, "swad_metrics": {}}
    trained = swad.state_dict()  # the checkpoint keeps the SWAD state as training left it
    metrics, averaged = _finish_swad(cfg, swad, model, eval_args)
    save(swad=trained, swad_model=averaged, swad_summary=swad.summary())
    return {"step": done, "selected": loop["selected"], "swad": swad, "swad_metrics": metrics}


def _validate(cfg: Config, loop: dict, where: tuple[str, int, int], model: nn.Module,
              swad: Swad | None, eval_args, logger) -> None:
    """Training-domain validation at (stage, global step, stage step): log, select, and hand
    the validation loss to SWAD (whose valley may end the stage)."""
    stage, step, stage_step = where
    ev = eval_model(model, *eval_args)
    logger.log(step, "val", **ev)
    _select(cfg, loop, stage, step, stage_step, ev, model)
    if swad is not None:
        swad.close_segment(ev["val_loss"], stage_step)
        if swad.dead:
            print(f"SWAD: validation loss left the valley at step {step} ({stage}); stopping "
                  "the stage early")


def _select(cfg: Config, loop: dict, stage: str, step: int, stage_step: int, ev: dict,
            model: nn.Module) -> None:
    """Training-domain validation model selection. Align: the official stage-1 save rule (keep
    the latest step at or after align_select_from whose accuracy equals the best so far,
    `--model_save`); other stages: the first step with the best accuracy (official
    `records.argmax("train_out")`)."""
    if stage == "align":
        loop["align_max"] = max(loop["align_max"], ev["id_acc"])
        if stage_step >= cfg.align_select_from and ev["id_acc"] >= loop["align_max"]:
            loop["best_align"] = _snapshot(step, ev, model)
    elif loop["selected"] is None or ev["id_acc"] > loop["selected"]["id_acc"]:
        loop["selected"] = _snapshot(step, ev, model)


def _start_distill(cfg: Config, model: nn.Module, best_align: dict | None) -> None:
    if best_align is None:
        print(f"warning: no Align validation at or after align_select_from="
              f"{cfg.align_select_from}; Distill starts from the last Align step",
              file=sys.stderr)
        return
    model.load_state_dict(best_align["model"])


def _resume(cfg: Config, ckpt: dict, model: Student, stages, device: torch.device):
    """(loop state, optimizer, SWAD) restored from a checkpoint of this run."""
    try:
        model.load_state_dict(ckpt["model"], strict=True)
        loop = {k: ckpt[k] for k in LOOP_KEYS}
        stage = stages[loop["stage_index"]][0]
        opt = make_optimizer(cfg, model, stage)
        opt.load_state_dict(ckpt["optimizer"])
        swad = _new_swad(cfg, stage)
        if swad is not None and ckpt.get("swad") is not None:
            swad.load_state_dict(ckpt["swad"], device)
    except (RuntimeError, KeyError, IndexError, ValueError, TypeError) as err:
        raise CheckpointError(f"the checkpoint in {cfg.out_dir or 'the run folder'}/ckpt was "
                              f"written by another config ({config_diff(cfg, ckpt.get('config'))}; "
                              f"{type(err).__name__})",
                              "use a new --out_dir or the original settings") from None
    set_rng_state(ckpt.get("rng"))
    print(f"resumed at step {ckpt['step']} ({stage})")
    return loop, opt, swad


def _finish_swad(cfg: Config, swad: Swad, model: Student, eval_args) -> tuple[dict, dict]:
    """Average the selected segments, recompute BatchNorm statistics on training batches unless
    BatchNorm is frozen (official: no re-estimation with freeze_bn), and evaluate; returns
    (metrics, state dict of the SWAD model), which the final checkpoint keeps."""
    data, split = eval_args[0], eval_args[1]
    swad.finalize()
    params = swad.averaged_parameters()
    averaged = copy.deepcopy(model)
    if params is not None:
        batches = None if cfg.freeze_bn else (
            collate(data, sample_batch_indices(split.train, cfg.batch_size,
                                               total_steps(cfg) + i, cfg.seed), augment=True)[0]
            for i in range(cfg.swad_bn_steps))
        averaged = swad_model(averaged, params, batches)
    return eval_model(averaged, *eval_args), averaged.state_dict()


def _snapshot(step: int, metrics: dict, model: nn.Module) -> dict:
    return {"step": step, "id_acc": metrics["id_acc"], "metrics": metrics,
            "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}

"""Training and evaluation loops: fit(cfg) -> dict, evaluate_checkpoint(path) -> dict."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import torch
from tqdm import tqdm

from . import runtime
from .config import Config, config_from_dict, config_to_json
from .data import (
    PairDataset,
    StepBatchSampler,
    collate,
    load_dataset_records,
    make_synthetic_records,
    synthetic_image_shape,
)
from .evaluation import evaluate_records
from .losses import SetCriterion
from .matching import PairHungarianMatcher
from .model import ModelSpec, PairDETR, load_backbone_weights
from .runtime import CheckpointError, ConfigError, MissingPathError

CKPT_KIND = runtime.SUBPROJECT


def model_spec(cfg: Config) -> ModelSpec:
    return ModelSpec(
        num_classes=3, box_dim=8 if cfg.method == "pairdetr" else 4, backbone=cfg.model_backbone,
        backbone_width=cfg.model_backbone_width, dim=cfg.model_dim, ffn_dim=cfg.model_ffn_dim,
        heads=cfg.model_heads, enc_layers=cfg.model_enc_layers, dec_layers=cfg.model_dec_layers,
        num_queries=cfg.model_num_queries, num_levels=cfg.model_num_levels,
        points=cfg.model_points, dropout=cfg.model_dropout)


def build_model(cfg: Config) -> PairDETR:
    if cfg.model_backbone != "tiny":
        import timm

        if not timm.is_model(cfg.model_backbone):
            raise ConfigError(f"model_backbone={cfg.model_backbone!r} is not a timm model",
                              "use tiny or a timm name such as resnet50")
    model = PairDETR(model_spec(cfg))
    if cfg.model_backbone_weights:
        load_backbone_weights(model, cfg.model_backbone_weights)
    if cfg.model_init_weights:
        load_init_weights(model, cfg.model_init_weights)
    if cfg.model_freeze_backbone:
        for p in model.backbone_parameters():
            p.requires_grad_(False)
    return model


def load_init_weights(model: PairDETR, path: str) -> None:
    """Weights from a checkpoint of this code, or a state_dict in the official layout
    (`model.model.*`, `class_embed.*`, `bbox_embed.*`, e.g. the released PairDETR weights).
    The official box head already has the layout our head keeps ([face, body], model.py), so the
    conversion renames keys only and official weights give official detections."""
    raw = runtime.read_weights_file(path, "model_init_weights")
    if "format_version" in raw:  # a checkpoint of this code: checked like any other
        state = runtime.load_checkpoint(path)["model"]
    else:
        from .official_reference import convert_official_state_dict

        state = convert_official_state_dict(raw.get("state_dict", raw))
    load_model_state(model, state, path)


def load_model_state(model: PairDETR, state: dict, where: str) -> None:
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{where}: weights do not fit this architecture ({first[:200]})",
                              "check the model_* fields") from err


def build_criterion(cfg: Config) -> SetCriterion:
    matcher = PairHungarianMatcher(cfg.cost_class, cfg.cost_bbox, cfg.cost_giou)
    weights = {"loss_ce": cfg.loss_ce, "loss_bbox": cfg.loss_bbox, "loss_giou": cfg.loss_giou}
    return SetCriterion(matcher, weights, cfg.focal_alpha, cfg.focal_gamma)


def build_records(cfg: Config, split: str) -> list:
    """Records of a split ("train" / "val") for cfg.data_name."""
    if cfg.data_name == "synthetic":
        height, width = synthetic_image_shape(cfg.data_image_size, cfg.data_max_size)
        num = cfg.data_num_train if split == "train" else cfg.data_num_val
        return make_synthetic_records(num, cfg.seed + (0 if split == "train" else 7919), height,
                                      width, cfg.data_max_people)
    ann = cfg.data_train_ann if split == "train" else cfg.data_val_ann
    records, stats = load_dataset_records(cfg.data_name, cfg.data_root, split, ann,
                                          cfg.data_skip_bad_lines)
    if stats["bad_lines"]:
        print(f"[data] {split}: skipped {len(stats['bad_lines'])} malformed annotation lines "
              f"(first: {stats['bad_lines'][:5]})")
    return records


def build_optimizer(cfg: Config, model: torch.nn.Module) -> torch.optim.Optimizer:
    backbone = {id(p) for p in model.backbone_parameters()}
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if id(p) not in backbone], "lr": cfg.lr},
              {"params": [p for p in params if id(p) in backbone], "lr": cfg.lr_backbone}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr,
                             weight_decay=cfg.weight_decay)


def lr_factor(cfg: Config, step: int) -> float:
    """Step schedule: x0.1 from `lr_drop_step` on (official: epoch 40 of 50)."""
    return 0.1 if cfg.lr_drop_step and step >= cfg.lr_drop_step else 1.0


def train_step(model, criterion, optimizer, batch: dict, cfg: Config, step: int,
               device: torch.device) -> dict[str, float]:
    """One optimisation step on a collated batch; returns the float losses."""
    for group, base in zip(optimizer.param_groups, (cfg.lr, cfg.lr_backbone)):
        group["lr"] = base * lr_factor(cfg, step)
    model.train()
    targets = [{k: t[k].to(device) for k in ("boxes", "labels")} for t in batch["targets"]]
    outputs = model(batch["pixel_values"].to(device), batch["pixel_mask"].to(device),
                    aux=cfg.aux_loss)
    losses = criterion(outputs, targets)
    if not torch.isfinite(losses["loss"]):
        raise FloatingPointError(f"non-finite loss at step {step}: "
                                 f"{ {k: float(v) for k, v in losses.items()} }")
    optimizer.zero_grad(set_to_none=True)
    losses["loss"].backward()
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    optimizer.step()
    return {k: float(v.detach()) for k, v in losses.items() if k == "loss" or not k[-1].isdigit()}


def evaluate_model(model, cfg: Config, device, records: list | None = None,
                   progress: bool = False, rank: int = 0, world: int = 1):
    """(scores, preds, records) on the validation split; sharded when world > 1."""
    records = records if records is not None else build_records(cfg, "val")
    return evaluate_records(_unwrap(model), records, cfg, device, rank, world, progress)


def _checkpoint(path: Path, cfg: Config, model, optimizer, step: int) -> None:
    runtime.save_checkpoint(path, kind=CKPT_KIND, step=step, config=dataclasses.asdict(cfg),
                            model=_unwrap(model).state_dict(), optimizer=optimizer.state_dict(),
                            torch_rng=torch.get_rng_state(), cuda_rng=runtime.cuda_rng_states())


def _resume(run_dir: Path, cfg: Config, model, optimizer) -> int:
    """Load the newest readable checkpoint of the run (last.pt, else last.prev.pt); its step."""
    ckpt = runtime.resume_checkpoint(run_dir / "ckpt")
    if ckpt is None:
        return 0
    where = run_dir / "ckpt"
    check_same_architecture(ckpt, cfg, where)
    load_model_state(model, ckpt["model"], str(where))
    optimizer.load_state_dict(ckpt["optimizer"])
    runtime.restore_rng(ckpt.get("torch_rng"), ckpt.get("cuda_rng"))
    print(f"resumed from {where} at step {int(ckpt['step'])}")
    return int(ckpt["step"])


def _shared_run_dir(cfg: Config, rank: int, world: int) -> Path:
    """The run folder, created by rank 0 and named to the other ranks: the default folder is
    timestamped, so ranks that got there in different seconds would otherwise use two folders.
    A folder rank 0 cannot create is the same one-line error on every rank (none waits)."""
    if world == 1:
        return runtime.make_run_dir(cfg.out_dir, cfg.config_name)
    box: list = [None]
    if rank == 0:
        try:
            box = [str(runtime.make_run_dir(cfg.out_dir, cfg.config_name))]
        except runtime.UserError as err:
            box = [("error", err.what, err.where)]
    torch.distributed.broadcast_object_list(box, src=0)
    if isinstance(box[0], tuple):
        raise runtime.UserError(box[0][1], box[0][2])
    return Path(box[0])


def fit(cfg: Config) -> dict:
    """Train (resuming from <out_dir>/ckpt/last.pt or last.prev.pt); returns the final metrics."""
    runtime.seed_everything(cfg.seed)
    runtime.set_determinism(cfg.deterministic)
    rank, world, device = runtime.init_distributed(cfg.device)
    run_dir = _shared_run_dir(cfg, rank, world)
    if rank == 0:
        (run_dir / "config.json").write_text(config_to_json(cfg))
        print(config_to_json(cfg))
    records, val_records = build_records(cfg, "train"), build_records(cfg, "val")
    model = build_model(cfg).to(device)
    criterion = build_criterion(cfg)
    optimizer = build_optimizer(cfg, model)
    start = _resume(run_dir, cfg, model, optimizer)
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    dataset = PairDataset(records, cfg.data_image_size, cfg.data_max_size,
                          single_boxes=cfg.method == "two_stage",
                          min_face_area=cfg.data_min_face_area)
    sampler = StepBatchSampler(len(records), cfg.batch_size, cfg.steps, cfg.seed, start,
                               cfg.data_hflip, cfg.data_train_scales, cfg.data_image_size,
                               rank, world)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate,
                                         num_workers=cfg.data_workers,
                                         generator=torch.Generator().manual_seed(cfg.seed))
    logger = runtime.MetricsLogger(run_dir, wandb=cfg.wandb and rank == 0,
                                   config=dataclasses.asdict(cfg), project="pairdetr")
    bar = tqdm(loader, total=len(sampler), initial=0, desc="train", disable=rank != 0)
    metrics, clipped, step, saved = {}, 0, start, start
    last = run_dir / "ckpt" / "last.pt"
    for step, batch in enumerate(bar, start=start + 1):
        if batch is None:
            continue
        clipped += sum(t["num_clipped"] for t in batch["targets"])
        metrics = train_step(model, criterion, optimizer, batch, cfg, step - 1, device)
        if rank == 0 and (step % cfg.log_every == 0 or step == cfg.steps):
            extra = {}
            if device.type == "cuda":
                extra["cuda_max_mem_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
            logger.log(step, progress=bar, clipped_boxes=clipped, **metrics, **extra)
        if cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.steps:
            scores, _, _ = evaluate_model(model, cfg, device, val_records, rank=rank, world=world)
            if rank == 0:
                logger.log(step, split="val", **_finite(scores))
        if rank == 0 and (step % cfg.save_every == 0 or step == cfg.steps):
            _checkpoint(last, cfg, model, optimizer, step)
            saved = step
    final = {"step": step, **{f"train_{k}": v for k, v in metrics.items()}}
    if rank == 0 and saved != step and (step > start or not last.is_file()):
        _checkpoint(last, cfg, model, optimizer, step)  # e.g. the last batch was undecodable
    scores, _, _ = evaluate_model(model, cfg, device, val_records, rank=rank, world=world)
    if rank == 0:
        logger.log(step, split="val", **_finite(scores))
    final.update({f"val_{k}": v for k, v in scores.items()})
    logger.close()
    if world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    final["run_dir"] = str(run_dir)
    return final


def _unwrap(model):
    return model.module if hasattr(model, "module") else model


def _json_safe(values: dict) -> dict:
    """NaN (a subset without any person) -> null, so the file is strict JSON."""
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in values.items()}


def _finite(scores: dict) -> dict:
    return {k: v for k, v in scores.items() if not math.isnan(v)}


def check_same_architecture(ckpt: dict, cfg: Config, where) -> None:
    """CheckpointError naming the model fields where the checkpoint and `cfg` differ."""
    try:
        saved = config_from_dict(ckpt["config"], where=str(where))
    except (ConfigError, TypeError) as err:
        raise CheckpointError(f"{where}: the checkpoint's config cannot be read ({err})",
                              "was it written by another version of this code?") from err
    if model_spec(cfg) != model_spec(saved):
        fields = ["method"] + [f.name for f in dataclasses.fields(Config)
                               if f.name.startswith("model_") and "weights" not in f.name
                               and f.name != "model_freeze_backbone"]
        diff = [f"{name}: {getattr(saved, name)} in the checkpoint, {getattr(cfg, name)} in the "
                "config" for name in fields if getattr(saved, name) != getattr(cfg, name)]
        raise CheckpointError(f"{where} was trained with a different architecture ("
                              f"{'; '.join(diff)})", "use another out_dir or the same model_*")


def load_trained(ckpt_path: str | Path, device: torch.device) -> tuple[PairDETR, Config, dict]:
    """Rebuild the model from a checkpoint's config and load its weights (strict)."""
    ckpt = runtime.load_checkpoint(ckpt_path)
    try:
        cfg = config_from_dict(ckpt["config"], where=str(ckpt_path))
    except (ConfigError, TypeError) as err:
        raise CheckpointError(f"{ckpt_path}: the checkpoint's config cannot be read ({err})",
                              "was it written by another version of this code?") from err
    model = PairDETR(model_spec(cfg))
    load_model_state(model, ckpt["model"], str(ckpt_path))
    return model.to(device), cfg, ckpt


def evaluate_checkpoint(ckpt_path: str | Path, overrides: dict | None = None) -> dict:
    """Evaluate a checkpoint on its config's validation split; writes <run>/eval/*.json + PNGs."""
    from .viz import draw_detections

    if not Path(ckpt_path).is_file():
        raise MissingPathError(f"checkpoint not found: {ckpt_path}",
                               "give the path of a ckpt/last.pt written by train.py")
    overrides = dict(overrides or {})
    device = runtime.resolve_device(overrides.pop("device", "auto"))
    model, cfg, ckpt = load_trained(ckpt_path, device)
    if overrides:
        cfg = config_from_dict({**dataclasses.asdict(cfg), **overrides}, where="eval.py")
    scores, preds, records = evaluate_model(model, cfg, device, progress=True)
    out_dir = Path(ckpt_path).resolve().parent.parent / "eval"
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as err:
        raise runtime.UserError(f"cannot write {out_dir}: {type(err).__name__}",
                                "evaluate a copy of the run folder") from err
    result = {"step": int(ckpt["step"]), "method": cfg.method, "data": cfg.data_name,
              "eval_protocol": cfg.eval_protocol, **scores,
              "num_images": len(records)}
    (out_dir / "val.json").write_text(json.dumps(_json_safe(result), indent=2))
    figures = draw_detections(records[:cfg.eval_figures], preds[:cfg.eval_figures],
                              out_dir / "pairs.png")
    result["figures"] = [str(figures)] if figures else []
    return result

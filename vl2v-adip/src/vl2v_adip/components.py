"""Build the pieces a run needs from a Config: data, teacher, student, and rebuild from a checkpoint.

The synthetic path pre-trains two stand-ins once per run folder (cached as files):
- `teacher.pt`: a small CLIP-like dual encoder trained contrastively on the synthetic set's *extra*
  domains (never the benchmark domains), the analogue of CLIP's web-scale pre-training;
- `student_init.pt`: the student backbone trained with cross-entropy on fewer extra domains, the
  analogue of an ImageNet-pretrained student.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import trange

from .config import Config
from .data import SYNTH_CLASSES, MultiDomainData, load_domainbed, make_synthetic
from .model import SmallCNN, Student, TimmBackbone
from .runtime import CheckpointError, ConfigError, MissingPathError
from .teacher import (
    BlackBoxTeacher,
    ClipTeacher,
    build_stand_in,
    load_teacher,
    pretrain_teacher,
    save_teacher,
)

STUDENT_INIT_KIND = "vl2v_adip_student_init"


def build_data(cfg: Config) -> MultiDomainData:
    """Benchmark data: synthetic shapes (seeded by cfg.seed) or a DomainBed folder."""
    if cfg.data_name == "synthetic":
        return make_synthetic(cfg.synth_domains, cfg.synth_per_domain, cfg.image_size, cfg.seed)
    if not cfg.data_root:
        raise ConfigError(f"data_name={cfg.data_name} needs data_root",
                          "the parent of PACS/, VLCS/, office_home/, ... (README)")
    if not Path(cfg.data_root).is_dir():
        raise MissingPathError(f"data_root not found: {cfg.data_root}",
                               "the parent of PACS/, VLCS/, office_home/, ... (README)")
    return load_domainbed(cfg.data_root, cfg.data_name, cfg.image_size)


def _stacked(data: MultiDomainData) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    xs = torch.cat([e.images for e in data.envs])  # [N, 3, S, S]
    ys = torch.cat([e.labels for e in data.envs])  # [N]
    ds = torch.cat([torch.full((len(e),), i) for i, e in enumerate(data.envs)])  # [N]
    return xs, ys, ds


def prepare_teacher(cfg: Config, data: MultiDomainData, run_dir: Path) -> tuple[ClipTeacher, str]:
    """Teacher from cfg.teacher_path, else (synthetic) a stand-in pre-trained and cached as
    run_dir/teacher.pt, else a random-init stand-in (says so). Returns (teacher, file); the
    teacher's input normalisation is cfg.teacher_input_norm."""
    if cfg.teacher_path:
        teacher = load_teacher(cfg.teacher_path).set_input_norm(cfg.teacher_input_norm)
        return teacher.eval(), cfg.teacher_path
    path = run_dir / "teacher.pt"
    if path.is_file():
        return load_teacher(path).set_input_norm(cfg.teacher_input_norm), str(path)
    if cfg.data_name != "synthetic":
        print("WARNING: no teacher_path; using a RANDOM-INIT stand-in teacher (no knowledge).")
        teacher = build_stand_in(data.classes, [], cfg.teacher_width, cfg.teacher_embed_dim)
    else:  # own RNG stream: the same stand-in whatever the caller's RNG state (claim check)
        pre = make_synthetic(cfg.teacher_pretrain_domains, cfg.teacher_pretrain_per_domain,
                             cfg.image_size, cfg.seed + 1000, name="teacher-pretrain")
        with torch.random.fork_rng():
            torch.manual_seed(cfg.seed + 1000)
            teacher = build_stand_in(list(SYNTH_CLASSES), pre.domains, cfg.teacher_width,
                                     cfg.teacher_embed_dim)
            x, y, d = _stacked(pre)
            pretrain_teacher(teacher, x, y, d, pre.classes, pre.domains,
                             cfg.teacher_pretrain_steps, batch_size=64, lr=2e-3, seed=cfg.seed)
    save_teacher(teacher, path)
    return teacher.set_input_norm(cfg.teacher_input_norm).eval(), str(path)


def pretrain_student_backbone(cfg: Config, path: Path) -> None:
    """Synthetic stand-in for ImageNet pre-training: CE on cfg.student_pretrain_domains."""
    torch.manual_seed(cfg.seed)
    pre = make_synthetic(cfg.student_pretrain_domains, cfg.teacher_pretrain_per_domain,
                         cfg.image_size, cfg.seed + 2000, name="student-pretrain")
    x, y, _ = _stacked(pre)
    net = SmallCNN(cfg.student_width)
    head = nn.Linear(net.num_features, len(pre.classes))
    opt = torch.optim.AdamW([*net.parameters(), *head.parameters()], lr=3e-3)
    gen = torch.Generator().manual_seed(cfg.seed)
    for _ in trange(cfg.student_pretrain_steps, desc="student pre-training", leave=False):
        idx = torch.randint(0, len(y), (64,), generator=gen)
        loss = F.cross_entropy(head(net(x[idx])), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    tmp = path.with_suffix(".tmp")
    torch.save({"kind": STUDENT_INIT_KIND, "width": cfg.student_width,
                "state": net.state_dict()}, tmp)
    os.replace(tmp, path)


def build_backbone(cfg: Config, weights: str) -> nn.Module:
    """Student backbone: small_cnn (weights = a student_init.pt) or a timm model."""
    if cfg.student_arch != "small_cnn":
        return TimmBackbone(cfg.student_arch, cfg.image_size, weights)
    net = SmallCNN(cfg.student_width)
    if weights:
        where = "a student_init.pt written by train.py / reproduce.py (small_cnn)"
        if not Path(weights).is_file():
            raise MissingPathError(f"student weights not found: {weights}", where)
        try:
            blob = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - reason written by us (see runtime.load_checkpoint)
            raise CheckpointError(f"not a readable student_init file: {weights} (damaged, "
                                  "truncated or not a PyTorch file)", where) from None
        if not isinstance(blob, dict) or blob.get("kind") != STUDENT_INIT_KIND \
                or "state" not in blob:
            raise CheckpointError(f"{weights} is not a small_cnn student_init file", where)
        if blob.get("width") != cfg.student_width:
            raise CheckpointError(f"{weights} has width {blob.get('width')}, config says "
                                  f"student_width={cfg.student_width}", where)
        try:
            net.load_state_dict(blob["state"], strict=True)
        except (RuntimeError, TypeError, AttributeError) as err:
            raise CheckpointError(f"{weights} does not fit small_cnn width {cfg.student_width} "
                                  f"({type(err).__name__})", where) from None
    return net


def student_weights(cfg: Config, run_dir: Path) -> str:
    """cfg.student_weights, or the cached synthetic pre-training (done when missing)."""
    if cfg.student_weights or cfg.student_arch != "small_cnn" or cfg.student_pretrain_steps <= 0 \
            or cfg.data_name != "synthetic":
        return cfg.student_weights
    path = run_dir / "student_init.pt"
    if not path.is_file():
        pretrain_student_backbone(cfg, path)
    return str(path)


def build_student(cfg: Config, num_classes: int, oracle: BlackBoxTeacher | None,
                  class_emb: torch.Tensor | None, teacher: ClipTeacher | None,
                  weights: str) -> Student:
    """ERM/KD: backbone + linear head. ADiP black-box: backbone + projection (F -> D) + text
    classifier. ADiP white-box (VL2V-SD): the teacher's image tower (copied) + text classifier."""
    if cfg.method in ("erm", "kd"):
        return Student(build_backbone(cfg, weights), "linear", num_classes)
    assert oracle is not None and class_emb is not None
    if cfg.teacher_access == "white_box":
        assert teacher is not None, "white-box needs the teacher weights"
        return Student(teacher.vision_tower_copy(), "text", num_classes, class_emb, oracle.scale(),
                       use_projection=False)
    return Student(build_backbone(cfg, weights), "text", num_classes, class_emb, oracle.scale())


def check_embed_dim(teacher_dim: int, student_dim: int, where: str) -> None:
    if teacher_dim != student_dim:
        raise CheckpointError(f"teacher embedding size {teacher_dim} does not match the student's "
                         f"projection size {student_dim} ({where}); use the teacher the student "
                         "was aligned to")


def rebuild_from_checkpoint(ckpt: dict) -> tuple[Config, Student | None, ClipTeacher | None]:
    """Model (SWAD average, else selected, else last weights) and teacher rebuilt from a
    checkpoint dict."""
    from .config import config_from_dict

    try:
        cfg = config_from_dict(ckpt["config"], where="checkpoint")
    except (ConfigError, TypeError, AttributeError) as err:
        raise CheckpointError(f"checkpoint config does not fit this version: {err}",
                              "re-train, or evaluate with the version that wrote it") from None
    meta = ckpt["meta"]
    if not isinstance(meta.get("teacher_file"), str) or not isinstance(meta.get("classes"),
                                                                       list) \
            or not isinstance(meta.get("embed_dim"), int):
        raise CheckpointError("checkpoint meta is malformed (teacher_file, classes, embed_dim)",
                              "use <run>/ckpt/last.pt of a train.py run")
    teacher = load_teacher(meta["teacher_file"]) if Path(meta["teacher_file"]).exists() else None
    if teacher is not None:
        teacher.set_input_norm(cfg.teacher_input_norm)
    if cfg.method == "zeroshot":
        return cfg, None, teacher
    class_emb = torch.zeros(len(meta["classes"]), meta["embed_dim"])
    if cfg.method == "adip":
        if teacher is None:
            raise MissingPathError(f"teacher file {meta['teacher_file']} needed to rebuild the "
                                   "student", "keep the run folder's teacher.pt / teacher_path")
        check_embed_dim(teacher.embed_dim, meta["embed_dim"], "checkpoint")
    oracle = BlackBoxTeacher(teacher) if teacher is not None else None
    model = build_student(dataclasses.replace(cfg, student_weights=""), len(meta["classes"]),
                          oracle, class_emb, teacher, weights="")
    try:
        state = ckpt.get("swad_model") or (ckpt["selected"]["model"] if ckpt.get("selected")
                                           else ckpt["model"])  # SWAD average if trained so
        model.load_state_dict(state, strict=True)
    except (KeyError, TypeError, AttributeError) as err:
        raise CheckpointError(f"checkpoint holds no usable model weights ({type(err).__name__})",
                              "use <run>/ckpt/last.pt of a train.py run") from None
    except RuntimeError as err:
        raise CheckpointError("checkpoint does not match the architecture in its config "
                              f"({_state_mismatch(model.state_dict(), state)})",
                              "the weights were written by another config") from err
    return cfg, model, teacher


def _state_mismatch(expected: dict, got: dict) -> str:
    """A short description of how two state dicts differ (first few keys / shapes)."""
    missing = sorted(set(expected) - set(got))[:3]
    extra = sorted(set(got) - set(expected))[:3]
    shapes = [f"{k}: {tuple(got[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
              if k in got and hasattr(got[k], "shape") and got[k].shape != v.shape][:2]
    parts = ([f"missing {missing}"] if missing else []) + ([f"unexpected {extra}"] if extra
                                                           else []) + shapes
    return "; ".join(parts) or "values differ"

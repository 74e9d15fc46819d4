"""Networks from a Config, and from a training checkpoint (shared by training and evaluation).

Shapes: see model.py. A checkpoint holds the teacher ("model"), the student, the optimizer, the
DINO centre, the step and the config as a plain dict; the networks are rebuilt from that config.
"""

from __future__ import annotations

from .config import Config, ConfigError, config_from_dict
from .model import MultiCropNet, ViTConfig, build_student_teacher
from .runtime import CheckpointError

ARCH = "pathdino-vit"


def vit_config(cfg: Config, drop_path: float | None = None) -> ViTConfig:
    return ViTConfig(cfg.model_img_size, cfg.model_patch_size, cfg.model_embed_dim,
                     cfg.model_depth, cfg.model_num_heads, 4.0,
                     cfg.model_drop_path if drop_path is None else drop_path)


def build_models(cfg: Config) -> tuple[MultiCropNet, MultiCropNet]:
    return build_student_teacher(vit_config(cfg), cfg.head_out_dim, cfg.head_hidden_dim,
                                 cfg.head_bottleneck_dim, cfg.head_norm_last_layer)


# keys that change the networks' shapes: a checkpoint of another value cannot be resumed/loaded
ARCH_KEYS = ("model_img_size", "model_patch_size", "model_embed_dim", "model_depth",
             "model_num_heads", "head_out_dim", "head_hidden_dim", "head_bottleneck_dim",
             "head_norm_last_layer", "local_crops_number")


def load_models(ckpt: dict, where: str = "checkpoint") -> tuple[Config, MultiCropNet,
                                                                   MultiCropNet]:
    """Rebuild student and teacher from ckpt['config'] and load them strictly (CheckpointError
    when the checkpoint is not a pathdino training checkpoint or does not match its config)."""
    if ckpt.get("arch") != ARCH or not isinstance(ckpt.get("config"), dict):
        raise CheckpointError(f"{where} is not a pathdino training checkpoint (arch "
                              f"{ckpt.get('arch')!r}, expected {ARCH!r})",
                              "give <run>/ckpt/last.pt written by train.py; released weights "
                              "go to extract.py --official")
    try:
        cfg = config_from_dict(ckpt["config"], where=f"{where} config")
    except ConfigError as err:
        raise CheckpointError(f"{where} holds a config this version cannot read: {err.what}",
                              "written by another version of pathdino?") from None
    student, teacher = build_models(cfg)
    try:
        teacher.load_state_dict(ckpt["model"], strict=True)
        if "student" in ckpt:
            student.load_state_dict(ckpt["student"], strict=True)
    except (RuntimeError, KeyError, TypeError, AttributeError) as err:
        raise CheckpointError(f"{where}: weights do not match the architecture in its config "
                              f"({type(err).__name__}: {str(err)[:200]})",
                              "a damaged or edited checkpoint") from None
    return cfg, student, teacher


def check_resumable(cfg: Config, ckpt: dict, where: str) -> None:
    """A checkpoint in out_dir written with other network shapes: a UserError naming them."""
    saved = ckpt.get("config", {})
    diff = [f"{k} {saved.get(k)!r} in the checkpoint vs {getattr(cfg, k)!r} now"
            for k in ARCH_KEYS if saved.get(k) != getattr(cfg, k)]
    if diff:
        raise CheckpointError(f"{where} is a checkpoint of another config: " + "; ".join(diff),
                              "use a new --out_dir, or the same settings to resume")

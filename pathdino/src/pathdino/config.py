"""Config: one frozen dataclass; defaults < TOML preset (--config) < --field value overrides."""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

import tomllib

from .runtime import ConfigError, MissingPathError

DataName = Literal["synthetic", "folder"]
SlideBackend = Literal["tifffile", "openslide"]
FpsCoords = Literal["official", "exact"]


@dataclass(frozen=True)
class Config:
    # --- run
    config_name: str = "default"  # run folder group: runs/<config_name>/<time>/
    out_dir: str = ""  # run folder; empty = runs/<config_name>/<YYYYmmdd-HHMMSS>
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    deterministic: bool = True
    wandb: bool = False  # mirror metrics to wandb (offline unless WANDB_MODE says otherwise)
    num_workers: int = 0  # DataLoader workers (official script: 24)
    # --- data
    data_name: DataName = "synthetic"  # synthetic = IHC tiles + synthetic textures; folder = images
    data_root: str = ""  # folder: root of patch images (ImageFolder or flat, see README)
    data_eval_root: str = ""  # folder: labelled ImageFolder for kNN/linear probe (eval)
    data_slide_root: str = ""  # folder with slides/*.tif(f)/svs + labels.csv for WSI-level eval
    data_source_size: int = 96  # synthetic: side of the source images the crops are taken from
    data_num_train: int = 512  # synthetic: number of unlabelled pretraining images
    data_num_eval_per_class: int = 40  # synthetic: labelled eval patches per class
    data_num_classes: int = 4  # synthetic: tissue classes
    data_orientation_bias_deg: float = 20.0  # synthetic: fibre angles in [-b, b] (scan bias)
    data_num_slides: int = 8  # synthetic slides for WSI-level eval (when no data_slide_root)
    data_slide_size: int = 768  # synthetic slide side at level 0 (pixels)
    # --- model (PathDino.py: ViT, depth 5, dim 384, 6 heads, patch 16, 512 px)
    model_img_size: int = 512
    model_patch_size: int = 16
    model_embed_dim: int = 384
    model_depth: int = 5
    model_num_heads: int = 6
    model_drop_path: float = 0.1  # student stochastic depth
    head_out_dim: int = 65536  # DINO head prototypes K
    head_hidden_dim: int = 2048
    head_bottleneck_dim: int = 256
    head_norm_last_layer: bool = True
    # --- DINO + HistoRotate augmentation (Sec. 3, official DataAugmentationDINO)
    historotate: bool = True  # False = DINO's augmentation without rotations (ablation)
    global_crop_size: int = 512
    local_crop_size: int = 224
    local_crops_number: int = 8
    global_crops_scale: tuple[float, ...] = (0.4, 1.0)
    local_crops_scale: tuple[float, ...] = (0.05, 0.4)
    # official 1024 px path: images this wide are rotated continuously and cropped to 600 px
    # (scale 0.4-7.0) before the global/local crops; 0 = never (every image takes the 512 path)
    historotate_large_side: int = 1024
    historotate_large_crop: int = 600
    historotate_large_crop_scale: tuple[float, ...] = (0.4, 7.0)
    # --- DINO loss
    teacher_temp: float = 0.04
    warmup_teacher_temp: float = 0.04
    warmup_teacher_temp_steps: int = 0
    student_temp: float = 0.1
    center_momentum: float = 0.9
    momentum_teacher: float = 0.996  # EMA start, cosine to 1
    # --- optimisation
    steps: int = 1000
    batch_size: int = 64
    lr: float = 5e-4  # at batch 256 (linear scaling rule)
    min_lr: float = 1e-6
    warmup_steps: int = 100
    weight_decay: float = 0.04
    weight_decay_end: float = 0.4
    clip_grad: float = 3.0  # 0 = off
    freeze_last_layer_steps: int = 0
    # --- logging / eval
    log_every: int = 10
    eval_every: int = 0  # kNN probe of the teacher during training; 0 = off
    save_every: int = 500
    eval_knn_k: int = 5  # majority vote @k (MV@5)
    eval_rotation_angles: int = 12  # rotation consistency: angles 0..360 in this many steps
    eval_rotation_patches: int = 64  # patches per set used for rotation consistency
    fps_num_patches: int = 30  # FPS: patches per WSI (official returnSamples)
    fps_tissue_threshold: float = 0.9  # FPS: tissue fraction of a kept cell
    fps_patch_size: int = 1000  # FPS: patch side at level 0 (20x)
    fps_thumbnail_size: int = 1024  # FPS: longer side of the thumbnail the mask is computed on
    fps_coords: FpsCoords = "official"  # level-0 scaling: official int(W0 / w_mask), or exact
    slide_backend: SlideBackend = "tifffile"


def _field_types() -> dict[str, Any]:
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in fields(Config)}


def _coerce(name: str, value: Any, typ: Any, where: str = "") -> Any:
    """Convert a TOML or CLI value to the field's type, or raise a ConfigError naming the field."""
    try:
        return _coerce_value(name, value, typ)
    except ValueError as err:
        raise ConfigError(str(err), f"in {where}" if where else "") from None


def _coerce_value(name: str, value: Any, typ: Any) -> Any:
    origin = typing.get_origin(typ)
    if origin is Literal:
        choices = typing.get_args(typ)
        if value not in choices:
            raise ValueError(f"{name}={value!r}: expected one of {choices}")
        return value
    if origin is tuple:
        (item_type, _) = typing.get_args(typ)
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise ValueError(f"{name}={value!r}: expected a list")
        return tuple(_coerce_value(name, v, item_type) for v in items)
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "1", "false", "0"}:
            return value.lower() in {"true", "1"}
        raise ValueError(f"{name}={value!r}: expected true/false/1/0")
    if typ is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and typ is not str:
        try:
            return typ(value)
        except (ValueError, OverflowError) as err:
            raise ValueError(f"{name}={value!r}: expected {typ.__name__}") from err
    if not isinstance(value, typ) or isinstance(value, bool) and typ is not bool:
        raise ValueError(f"{name}={_short(value)}: expected {typ.__name__}")
    return value


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_keys(keys: list[str], where: str) -> None:
    valid = _field_types()
    unknown = [k for k in keys if k not in valid]
    if unknown:
        names = ", ".join(_short(k, 40) for k in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
        raise ConfigError(f"unknown config key(s) {names} in {where}",
                          f"valid keys: {', '.join(sorted(valid))}")


def config_from_dict(values: dict[str, Any], where: str = "dict") -> Config:
    """Build a Config from (possibly partial) values, checking keys and types."""
    _check_keys(list(values), where)
    types = _field_types()
    return Config(**{k: _coerce(k, v, types[k], where) for k, v in values.items()})


def load_config(path: str | Path) -> Config:
    """Read a TOML preset; its file stem is the default config_name."""
    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"config file not found: {path}",
                               "give --config an existing .toml file, e.g. configs/tiny.toml")
    try:
        with path.open("rb") as f:
            values = tomllib.load(f)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path} is not valid TOML: {err}", "fix the line it names") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read {path} ({type(err).__name__})",
                          "a UTF-8 TOML file") from None
    values.setdefault("config_name", path.stem)
    return config_from_dict(values, where=str(path))


def check_config(cfg: Config) -> Config:
    """Values that parse but cannot run: a ConfigError naming the key (checked before training)."""
    problems = []
    positive = ["steps", "batch_size", "model_img_size", "model_patch_size", "model_embed_dim",
                "model_depth", "model_num_heads", "head_out_dim", "head_hidden_dim",
                "head_bottleneck_dim", "global_crop_size", "local_crop_size", "log_every",
                "save_every", "data_source_size", "data_num_train", "fps_num_patches",
                "fps_patch_size", "fps_thumbnail_size", "eval_knn_k", "eval_rotation_angles",
                "eval_rotation_patches", "data_num_eval_per_class", "data_slide_size"]
    problems += [f"{k}={getattr(cfg, k)} must be >= 1" for k in positive if getattr(cfg, k) < 1]
    if cfg.steps == 0:  # an untrained checkpoint (reproduce.py's baseline row) is allowed
        problems = [p for p in problems if not p.startswith("steps=")]
    nonneg = ["local_crops_number", "warmup_steps", "eval_every", "num_workers",
              "freeze_last_layer_steps", "warmup_teacher_temp_steps", "historotate_large_side",
              "clip_grad", "min_lr", "lr", "weight_decay", "weight_decay_end", "model_drop_path"]
    problems += [f"{k}={getattr(cfg, k)} must be >= 0" for k in nonneg if not getattr(cfg, k) >= 0]
    for key in ("model_img_size", "global_crop_size", "local_crop_size"):
        if cfg.model_patch_size >= 1 and getattr(cfg, key) % cfg.model_patch_size:
            problems.append(f"{key}={getattr(cfg, key)} is not a multiple of model_patch_size="
                            f"{cfg.model_patch_size}")
    if cfg.model_num_heads >= 1 and cfg.model_embed_dim % cfg.model_num_heads:
        problems.append(f"model_embed_dim={cfg.model_embed_dim} is not a multiple of "
                        f"model_num_heads={cfg.model_num_heads}")
    for key in ("teacher_temp", "warmup_teacher_temp", "student_temp"):
        if not getattr(cfg, key) > 0:
            problems.append(f"{key}={getattr(cfg, key)} must be > 0")
    for key in ("momentum_teacher", "center_momentum", "fps_tissue_threshold"):
        if not 0.0 <= getattr(cfg, key) <= 1.0:
            problems.append(f"{key}={getattr(cfg, key)} must be in [0, 1]")
    for key in ("global_crops_scale", "local_crops_scale", "historotate_large_crop_scale"):
        scale = getattr(cfg, key)
        if len(scale) != 2 or not 0 < scale[0] <= scale[1]:
            problems.append(f"{key}={list(scale)} must be two numbers 0 < low <= high")
    if cfg.historotate_large_side and cfg.historotate_large_crop < 1:
        problems.append(f"historotate_large_crop={cfg.historotate_large_crop} must be >= 1")
    if cfg.data_name == "folder" and not cfg.data_root:
        problems.append("data_name='folder' needs data_root (a folder of images)")
    if not 2 <= cfg.data_num_classes <= 6:  # synthetic.tissue_classes has 6 textures
        problems.append(f"data_num_classes={cfg.data_num_classes} must be in 2..6")
    if problems:
        raise ConfigError("invalid config: " + "; ".join(problems), "fix these keys in the "
                          "TOML preset or on the command line")
    return cfg


def parse_config(argv: list[str] | None = None) -> Config:
    """Defaults, then `--config file.toml`, then `--field value` pairs (later wins)."""
    argv = list(argv or [])
    values: dict[str, Any] = {}
    if "--config" in argv:
        i = argv.index("--config")
        if i + 1 >= len(argv):
            raise ConfigError("--config needs a path", "e.g. --config configs/tiny.toml")
        values = dataclasses.asdict(load_config(argv[i + 1]))
        del argv[i : i + 2]
    overrides = parse_overrides(argv)
    return check_config(config_from_dict({**values, **overrides}, where="command line"))


def parse_overrides(argv: list[str]) -> dict[str, str]:
    """`--field value` pairs -> {field: value} (strings; keys checked, values coerced later)."""
    if len(argv) % 2:
        raise ConfigError(f"expected --field value pairs, got {_short(argv)}",
                          "each --field needs one value, e.g. --steps 300")
    overrides = {}
    for flag, value in zip(argv[::2], argv[1::2]):
        if not flag.startswith("--") or len(flag) < 3:
            raise ConfigError(f"expected --field, got {_short(flag)}",
                              "each --field needs one value, e.g. --steps 300")
        overrides[flag[2:].replace("-", "_")] = value
    _check_keys(list(overrides), "command line")
    return overrides


def config_to_json(cfg: Config) -> str:
    return json.dumps(dataclasses.asdict(cfg), indent=2, sort_keys=True)

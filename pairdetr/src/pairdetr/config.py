"""Config: one frozen dataclass; defaults < TOML preset (--config) < --field value overrides."""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

import tomllib

from .runtime import ConfigError, MissingPathError

Method = Literal["pairdetr", "two_stage"]
DataName = Literal["synthetic", "crowdhuman", "citypersons"]
EvalProtocol = Literal["official", "corrected"]


@dataclass(frozen=True)
class Config:
    # --- run
    config_name: str = "default"  # run folder group: runs/<config_name>/<time>/
    out_dir: str = ""  # run folder; empty = runs/<config_name>/<YYYYmmdd-HHMMSS>
    seed: int = 2023  # official config seed
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    deterministic: bool = True
    wandb: bool = False  # mirror metrics to wandb (offline unless WANDB_MODE says otherwise)
    method: Method = "pairdetr"  # pairdetr = joint pairs; two_stage = body/face classes + POS matching
    # --- data
    data_name: DataName = "synthetic"
    data_root: str = ""  # dataset folder (README: expected tree); unused for synthetic
    data_train_ann: str = ""  # annotation file relative to data_root (empty = layout default)
    data_val_ann: str = ""
    data_num_train: int = 64  # synthetic only: number of training images
    data_num_val: int = 16  # synthetic only: number of validation images
    data_max_people: int = 6  # synthetic only: people per image (1..max)
    data_image_size: int = 128  # resize shorter side to this (paper: 480..800 train, 800 val)
    data_max_size: int = 160  # cap on the longer side (paper: 1400)
    data_train_scales: tuple[int, ...] = ()  # multi-scale training short sides (empty = fixed)
    data_hflip: bool = True  # random horizontal flip (Sec. 4 / official transforms)
    data_workers: int = 0
    data_skip_bad_lines: bool = True  # .odgt: skip malformed lines (warn with line number) or stop
    # pair rule for training targets: a visible face whose area / image area is below this is
    # treated as "no visible face" (class 1, head in the second slot). 1e-4 reproduces the class-0
    # rows of the official CityPersons files (README "Class-0 rule"); 0 = every visible face
    data_min_face_area: float = 0.0
    # --- model (Deformable-DETR, transformers implementation)
    model_backbone: str = "tiny"  # "tiny" = small random HF ResNet; else a timm name (resnet50)
    model_backbone_width: int = 16  # tiny backbone stem width (stages x1, x2, x4, x8)
    model_backbone_weights: str = ""  # torchvision/timm state_dict .pth for the backbone
    model_init_weights: str = ""  # full PairDETR checkpoint (ckpt/last.pt) to start from
    model_freeze_backbone: bool = False  # official config freezes the backbone
    model_dim: int = 256  # d_model
    model_ffn_dim: int = 1024
    model_heads: int = 8
    model_enc_layers: int = 6
    model_dec_layers: int = 6
    model_num_queries: int = 1500
    model_num_levels: int = 4
    model_points: int = 4  # sampling points per head and level (encoder and decoder)
    model_dropout: float = 0.1
    # --- matcher / loss (official config: class 2, L1 5, GIoU 2)
    cost_class: float = 2.0
    cost_bbox: float = 5.0
    cost_giou: float = 2.0
    loss_ce: float = 2.0
    loss_bbox: float = 5.0
    loss_giou: float = 2.0
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    aux_loss: bool = True  # loss on every decoder layer (see README: official code uses last only)
    # --- optimisation
    steps: int = 1000
    batch_size: int = 1
    lr: float = 4e-5
    lr_backbone: float = 4e-5
    weight_decay: float = 1e-4
    lr_drop_step: int = 0  # multiply lr by 0.1 at this step (0 = never); paper: epoch 40 of 50
    grad_clip: float = 0.1
    # --- logging / eval
    log_every: int = 10
    eval_every: int = 0  # 0 = only at the end
    save_every: int = 500
    # official = the released toolkits number for number (quirks in README); corrected = fixed
    eval_protocol: EvalProtocol = "corrected"
    eval_conf_threshold: float = 0.01  # corrected protocol: keep queries whose person score > this
    eval_height_scale: float = 1.0  # scale of the pixel height ranges of the MR/mMR subsets
    eval_max_images: int = 0  # 0 = whole validation split
    eval_figures: int = 4  # images drawn with pair links


def _field_types() -> dict[str, Any]:
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in fields(Config)}


def _coerce(name: str, value: Any, typ: Any) -> Any:
    """Convert a TOML or CLI value to the field's type, or raise a ConfigError naming the field."""
    origin = typing.get_origin(typ)
    if origin is Literal:
        choices = typing.get_args(typ)
        if not isinstance(value, str) or value not in choices:
            raise ConfigError(f"{name}={value!r}: expected one of {list(choices)}")
        return value
    if origin is tuple:
        (item_type, _) = typing.get_args(typ)
        items = [v for v in value.split(",") if v.strip()] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise ConfigError(f"{name}={value!r}: expected a list")
        return tuple(_coerce(name, v, item_type) for v in items)
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "1", "false", "0"}:
            return value.lower() in {"true", "1"}
        raise ConfigError(f"{name}={value!r}: expected true/false/1/0")
    if typ is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = float(value)
    elif isinstance(value, str) and typ is not str:
        try:
            value = typ(value.strip())
        except (ValueError, OverflowError) as err:
            raise ConfigError(f"{name}={value!r}: expected {typ.__name__}") from err
    if not isinstance(value, typ) or (isinstance(value, bool) and typ is not bool):
        raise ConfigError(f"{name}={value!r}: expected {typ.__name__}")
    if typ is float and not math.isfinite(value):
        raise ConfigError(f"{name}={value!r}: expected a finite number")
    if typ is str and ("\x00" in value):
        raise ConfigError(f"{name}: contains a NUL character")
    return value


# field -> (minimum, maximum) for numbers that have a meaningful range
_RANGES = {
    "seed": (0, 2**32 - 1), "steps": (1, None), "batch_size": (1, None), "data_num_train": (1, None),
    "data_num_val": (1, None), "data_max_people": (1, None), "data_image_size": (8, None),
    "data_max_size": (8, None), "data_workers": (0, None), "model_backbone_width": (1, None),
    "model_dim": (32, None), "model_ffn_dim": (1, None), "model_heads": (1, None),
    "model_enc_layers": (1, None), "model_dec_layers": (1, None), "model_num_queries": (1, None),
    "model_num_levels": (1, None), "model_points": (1, None), "model_dropout": (0.0, 1.0),
    "lr": (0.0, None), "lr_backbone": (0.0, None), "weight_decay": (0.0, None),
    "lr_drop_step": (0, None), "grad_clip": (0.0, None), "log_every": (1, None),
    "eval_every": (0, None), "save_every": (1, None), "eval_conf_threshold": (0.0, 1.0),
    "eval_height_scale": (1e-6, None), "eval_max_images": (0, None), "eval_figures": (0, None),
    "data_min_face_area": (0.0, 1.0), "focal_alpha": (0.0, 1.0), "focal_gamma": (0.0, None),
}


def _check_ranges(cfg: Config, where: str) -> None:
    for name, (low, high) in _RANGES.items():
        value = getattr(cfg, name)
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f">= {low}" + (f" and <= {high}" if high is not None else "")
            raise ConfigError(f"{name}={value!r} is out of range: expected {bounds}", where)
    if any(s < 8 for s in cfg.data_train_scales):
        raise ConfigError(f"data_train_scales={cfg.data_train_scales}: sides must be >= 8", where)
    if cfg.model_dim % 32 or cfg.model_dim % cfg.model_heads:
        raise ConfigError(f"model_dim={cfg.model_dim} must be a multiple of 32 (GroupNorm of the "
                          f"input projections) and of model_heads={cfg.model_heads}", where)


def _check_keys(keys: list[str], where: str) -> None:
    valid = _field_types()
    unknown = [k for k in keys if k not in valid]
    if unknown:
        raise ConfigError(f"unknown config key(s) {unknown} in {where}",
                          f"valid keys: {', '.join(sorted(valid))}")


def config_from_dict(values: dict[str, Any], where: str = "dict") -> Config:
    """Build a Config from (possibly partial) values, checking keys, types and ranges."""
    _check_keys(list(values), where)
    types = _field_types()
    cfg = Config(**{k: _coerce(k, v, types[k]) for k, v in values.items()})
    _check_ranges(cfg, where)
    return cfg


def load_config(path: str | Path) -> Config:
    """Read a TOML preset; its file stem is the default config_name."""
    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"config file not found: {path}", "see configs/*.toml")
    try:
        with path.open("rb") as f:
            values = tomllib.load(f)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path} is not valid TOML: {err}", "fix the file's syntax") from err
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {type(err).__name__}") from err
    values.setdefault("config_name", path.stem)
    return config_from_dict(values, where=str(path))


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
    if len(argv) % 2:
        raise ConfigError(f"expected --field value pairs, got {argv}")
    overrides = {}
    for flag, value in zip(argv[::2], argv[1::2]):
        if not flag.startswith("--"):
            raise ConfigError(f"expected --field, got {flag!r}")
        overrides[flag[2:].replace("-", "_")] = value
    _check_keys(list(overrides), "command line")
    return config_from_dict({**values, **overrides}, where="command line")


def config_to_json(cfg: Config) -> str:
    return json.dumps(dataclasses.asdict(cfg), indent=2, sort_keys=True)

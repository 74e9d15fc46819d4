"""Config: one frozen dataclass; defaults < TOML preset (--config) < --field value overrides."""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

import tomllib

Method = Literal["pairdetr", "two_stage"]
DataName = Literal["synthetic", "crowdhuman", "citypersons"]


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
    eval_conf_threshold: float = 0.01  # keep predictions whose person score exceeds this
    eval_height_scale: float = 1.0  # scale of the pixel height ranges of the MR/mMR subsets
    eval_max_images: int = 0  # 0 = whole validation split
    eval_figures: int = 4  # images drawn with pair links


def _field_types() -> dict[str, Any]:
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in fields(Config)}


def _coerce(name: str, value: Any, typ: Any) -> Any:
    """Convert a TOML or CLI value to the field's type, or raise a ValueError naming the field."""
    origin = typing.get_origin(typ)
    if origin is Literal:
        choices = typing.get_args(typ)
        if value not in choices:
            raise ValueError(f"{name}={value!r}: expected one of {choices}")
        return value
    if origin is tuple:
        (item_type, _) = typing.get_args(typ)
        if isinstance(value, str):
            items = [v for v in value.split(",") if v.strip()]
        else:
            items = value
        if not isinstance(items, (list, tuple)):
            raise ValueError(f"{name}={value!r}: expected a list")
        return tuple(_coerce(name, v, item_type) for v in items)
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
        except ValueError as err:
            raise ValueError(f"{name}={value!r}: expected {typ.__name__}") from err
    if not isinstance(value, typ) or isinstance(value, bool) and typ is not bool:
        raise ValueError(f"{name}={value!r}: expected {typ.__name__}")
    return value


def _check_keys(keys: list[str], where: str) -> None:
    valid = _field_types()
    unknown = [k for k in keys if k not in valid]
    if unknown:
        raise ValueError(f"unknown config key(s) {unknown} in {where}; valid keys: {sorted(valid)}")


def config_from_dict(values: dict[str, Any], where: str = "dict") -> Config:
    """Build a Config from (possibly partial) values, checking keys and types."""
    _check_keys(list(values), where)
    types = _field_types()
    return Config(**{k: _coerce(k, v, types[k]) for k, v in values.items()})


def load_config(path: str | Path) -> Config:
    """Read a TOML preset; its file stem is the default config_name."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    with path.open("rb") as f:
        values = tomllib.load(f)
    values.setdefault("config_name", path.stem)
    return config_from_dict(values, where=str(path))


def parse_config(argv: list[str] | None = None) -> Config:
    """Defaults, then `--config file.toml`, then `--field value` pairs (later wins)."""
    argv = list(argv or [])
    values: dict[str, Any] = {}
    if "--config" in argv:
        i = argv.index("--config")
        if i + 1 >= len(argv):
            raise ValueError("--config needs a path")
        values = dataclasses.asdict(load_config(argv[i + 1]))
        del argv[i : i + 2]
    if len(argv) % 2:
        raise ValueError(f"expected --field value pairs, got {argv}")
    overrides = {}
    for flag, value in zip(argv[::2], argv[1::2]):
        if not flag.startswith("--"):
            raise ValueError(f"expected --field, got {flag!r}")
        overrides[flag[2:].replace("-", "_")] = value
    _check_keys(list(overrides), "command line")
    return config_from_dict({**values, **overrides}, where="command line")


def config_to_json(cfg: Config) -> str:
    return json.dumps(dataclasses.asdict(cfg), indent=2, sort_keys=True)

"""Config: one frozen dataclass; defaults < TOML preset (--config) < --field value overrides."""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

import tomllib

Method = Literal["erm", "kd", "adip", "zeroshot"]
TeacherAccess = Literal["black_box", "white_box"]
DataName = Literal["synthetic", "PACS", "VLCS", "OfficeHome", "TerraIncognita", "DomainNet"]


@dataclass(frozen=True)
class Config:
    # --- run
    config_name: str = "default"  # run folder group: runs/<config_name>/<time>/
    out_dir: str = ""  # run folder; empty = runs/<config_name>/<YYYYmmdd-HHMMSS>
    seed: int = 0  # seeds model init, batches and the DomainBed split (trial seed)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    deterministic: bool = True
    wandb: bool = False  # mirror metrics to wandb (offline unless WANDB_MODE says otherwise)
    # --- data (DomainBed leave-one-domain-out)
    data_name: DataName = "synthetic"
    data_root: str = ""  # parent of PACS/, VLCS/, office_home/, terra_incognita/, domain_net/
    test_domain: int = 0  # index of the held-out domain in the dataset's domain list
    holdout_fraction: float = 0.2  # DomainBed: per training domain, this part is validation
    image_size: int = 224
    synth_domains: tuple[str, ...] = ("photo", "sketch", "cartoon", "texture")
    synth_per_domain: int = 300  # synthetic images per benchmark domain
    # --- teacher (vision-language model)
    teacher_path: str = ""  # HF CLIP folder or teacher .pt; empty = stand-in (see README)
    teacher_pretrain_domains: tuple[str, ...] = ("inverted", "dotted", "outline", "blurred",
                                                 "mosaic", "noisy")  # synthetic stand-in only
    teacher_pretrain_per_domain: int = 400
    teacher_pretrain_steps: int = 400
    teacher_width: int = 32  # stand-in conv image tower width
    teacher_embed_dim: int = 64  # stand-in embedding size D
    # --- student
    student_arch: str = "small_cnn"  # small_cnn | any timm name (resnet50, vit_small_patch16_224,
    #                                  deit_small_patch16_224)
    student_weights: str = ""  # ImageNet weights file (timm) or a student_init.pt (small_cnn)
    student_width: int = 16  # small_cnn only
    student_pretrain_domains: tuple[str, ...] = ("inverted", "outline")  # synthetic "ImageNet"
    student_pretrain_steps: int = 200  # synthetic only, when student_weights is empty
    # --- method (Sec. 4)
    method: Method = "adip"  # erm | kd (naive KD) | adip (VL2V-ADiP) | zeroshot (teacher)
    teacher_access: TeacherAccess = "black_box"  # white_box (adip only) = VL2V-SD
    align_steps: int = 5000  # stage 1 (Align): projection only, backbone frozen (own run in
    #                          the official scripts, 5000 DomainBed steps)
    lmd: float = 0.5  # weight of the image-embedding term (official `lmd`)
    kd_temperature: float = 4.0  # naive KD temperature T
    kd_alpha: float = 0.5  # naive KD: (1 - alpha) CE + alpha T^2 KL
    cutmix_beta: float = 0.0  # CutMix Beta(beta, beta); 0 = off (official DFC default)
    cutmix_prob: float = 0.0
    # --- optimisation (DomainBed / official defaults: Adam, lr 5e-5, 32 images per domain)
    steps: int = 5000  # stage 2 (Distill) steps for adip; all steps for erm / kd
    batch_size: int = 32  # per training domain
    lr: float = 5e-5
    align_lr: float = 5e-5
    weight_decay: float = 0.0
    # --- logging / eval
    log_every: int = 50
    eval_every: int = 200  # training-domain validation (model selection; SWAD segments)
    # --- SWAD (official runs: --swad True; LossValley defaults from the official config.yaml)
    swad: bool = False  # dense weight averaging over the validation-loss valley (final stage)
    swad_n_converge: int = 3
    swad_n_tolerance: int = 6
    swad_tolerance_ratio: float = 0.3
    swad_bn_steps: int = 500  # training batches for the BatchNorm statistics of the average
    save_every: int = 1000
    eval_batch_size: int = 128


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
        items = value.split(",") if isinstance(value, str) else value
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

"""Config: one frozen dataclass; defaults < TOML preset (--config) < --field value overrides."""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

import tomllib

Method = Literal["hvae", "rl", "free_bits"]
DataName = Literal["digits", "mnist", "fashion_mnist", "cifar10"]


@dataclass(frozen=True)
class Config:
    # --- run
    config_name: str = "default"  # run folder group: runs/<config_name>/<time>/
    out_dir: str = ""  # run folder; empty = runs/<config_name>/<YYYYmmdd-HHMMSS>
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    deterministic: bool = True
    wandb: bool = False  # mirror metrics to wandb (offline unless WANDB_MODE says otherwise)
    # --- data
    data_name: DataName = "digits"
    data_root: str = ""  # folder with the published files (see README); unused for digits
    data_binarize: bool = True  # dynamic binarisation each batch, Bernoulli likelihood (Sec. 5)
    data_val_fraction: float = 0.2  # digits only: held-out split (other sets ship a test split)
    # --- model (Sec. 5 / official FashionMNIST script)
    model_channels: int = 64  # deterministic-stage width
    model_blocks_per_stage: int = 3  # residual blocks per deterministic stage
    model_stage_strides: tuple[int, ...] = (2, 2, 1, 1, 1)  # one entry per latent level
    model_stage_kernels: tuple[int, ...] = (5, 3, 3, 3, 3)
    model_conv_latent_channels: int = 8  # level 1: Gaussian conv latent
    model_dense_latents: tuple[int, ...] = (64, 32, 16, 8)  # levels 2..L: dense Gaussian latents
    # --- objective
    method: Method = "rl"  # hvae: ELBO; rl: Q-value objective (Sec. 4); free_bits: ELBO + free nats
    rl_gamma: float = 0.9  # discount of the Q-value (Eq. 9)
    kl_warmup_steps: int = 0  # linear KL warm-up (0 = off, as in the RL script)
    free_nats: float = 0.0  # free nats per level (0 = off, as in the RL script)
    free_nats_steps: int = 0  # constant for half of these steps, then linear cooldown to 0
    # --- optimisation
    steps: int = 1000
    batch_size: int = 128
    lr: float = 3e-4
    grad_clip: float = 0.0  # 0 = off
    # --- logging / eval
    log_every: int = 20
    eval_every: int = 0  # 0 = only at the end
    save_every: int = 500
    eval_iw_samples: int = 100  # importance samples for the IW bound on log p(x)
    eval_max_examples: int = 0  # 0 = whole eval split


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

"""Config: one frozen dataclass; defaults < TOML preset (--config) < --field value overrides."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

import tomllib

from .runtime import ConfigError, MissingPathError

Method = Literal["hvae", "rl", "free_bits"]
DataName = Literal["digits", "mnist", "fashion_mnist", "cifar10", "npz"]
ArchSkips = Literal["released", "intended"]
Binarization = Literal["cached", "fresh"]


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
    data_root: str = ""  # folder with the published files (see README); must be empty for digits
    data_binarize: bool = True  # binarised pixels, Bernoulli likelihood (Sec. 5)
    # cached: each training image binarised once and reused (the released loader, paper preset);
    # fresh: a new binarisation for every batch (dynamic binarisation)
    data_binarization: Binarization = "cached"
    data_val_fraction: float = 0.2  # digits only: held-out split (other sets ship a test split)
    # --- model (Sec. 5 / official FashionMNIST script)
    # released: the network of the official code, whose same-shape skip inputs are dropped
    # (README, "Released-code quirks"); intended: this repository's earlier network, every
    # deterministic skip live (and its own block design)
    arch_skips: ArchSkips = "released"
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

    def __post_init__(self) -> None:
        problems = [msg for bad, msg in _checks(self) if bad]
        if problems:
            raise ConfigError("invalid config: " + "; ".join(problems),
                              "fix the value in the TOML preset or on the command line")


def _checks(c: Config) -> list[tuple[bool, str]]:
    """(violated?, message) for every range rule of the fields."""
    finite = math.isfinite
    levels = 1 + len(c.model_dense_latents)
    return [
        (c.steps < 0, f"steps={c.steps} must be >= 0"),
        (c.batch_size < 1, f"batch_size={c.batch_size} must be >= 1"),
        (c.arch_skips == "released" and c.batch_size < 2,
         "arch_skips=released needs batch_size >= 2 (data-dependent weight-norm init)"),
        (not (c.lr > 0 and finite(c.lr)), f"lr={c.lr} must be a positive number"),
        (not 0 <= c.rl_gamma <= 1, f"rl_gamma={c.rl_gamma} must be in [0, 1]"),
        (not (c.free_nats >= 0 and finite(c.free_nats)), f"free_nats={c.free_nats} must be >= 0"),
        (not (c.grad_clip >= 0 and finite(c.grad_clip)), f"grad_clip={c.grad_clip} must be >= 0"),
        (min(c.kl_warmup_steps, c.free_nats_steps, c.eval_every, c.save_every,
             c.eval_max_examples) < 0, "step counts and eval_max_examples must be >= 0"),
        (c.log_every < 1 or c.eval_iw_samples < 1, "log_every and eval_iw_samples must be >= 1"),
        (not 0 < c.data_val_fraction < 1, f"data_val_fraction={c.data_val_fraction} not in (0, 1)"),
        (c.data_name == "digits" and bool(c.data_root),
         f"data_root={c.data_root!r} is set but data_name='digits' uses scikit-learn's bundled "
         "images; set --data_name (mnist, fashion_mnist, cifar10, npz) for a folder"),
        (min(c.model_channels, c.model_blocks_per_stage, c.model_conv_latent_channels,
             *c.model_dense_latents, *c.model_stage_strides, *c.model_stage_kernels, 1) < 1,
         "model sizes, strides and kernels must be >= 1"),
        (len(c.model_stage_strides) != levels or len(c.model_stage_kernels) != levels,
         f"model_stage_strides and model_stage_kernels need {levels} entries "
         f"(1 conv latent + {len(c.model_dense_latents)} dense)"),
        (len(c.model_dense_latents) < 1, "model_dense_latents needs at least one level"),
        (re.fullmatch(r"auto|cpu|cuda(:\d+)?", c.device) is None,
         f"device={c.device!r} is not one of auto, cpu, cuda, cuda:N"),
    ]


@functools.cache
def _field_types() -> dict[str, Any]:
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in fields(Config)}


def _coerce(name: str, value: Any, typ: Any) -> Any:
    """Convert a TOML or CLI value to the field's type, or raise a ConfigError naming the field."""
    origin = typing.get_origin(typ)
    if origin is Literal:
        choices = typing.get_args(typ)
        if value not in choices:
            raise ConfigError(f"{name}={value!r}: expected one of {choices}")
        return value
    if origin is tuple:
        (item_type, _) = typing.get_args(typ)
        items = value.split(",") if isinstance(value, str) else value
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
        return float(value)
    if isinstance(value, str) and typ is not str:
        try:
            return typ(value)
        except ValueError:
            raise ConfigError(f"{name}={value!r}: expected {typ.__name__}") from None
    if not isinstance(value, typ) or isinstance(value, bool) and typ is not bool:
        raise ConfigError(f"{name}={value!r}: expected {typ.__name__}")
    return value


def _check_keys(keys: list[str], where: str) -> None:
    valid = _field_types()
    unknown = [k for k in keys if k not in valid]
    if unknown:
        raise ConfigError(f"unknown config key(s) {unknown} in {where}",
                          f"valid keys: {', '.join(sorted(valid))}")


def config_from_dict(values: dict[str, Any], where: str = "dict") -> Config:
    """Build a Config from (possibly partial) values, checking keys and types."""
    _check_keys(list(values), where)
    types = _field_types()
    return Config(**{k: _coerce(k, v, types[k]) for k, v in values.items()})


def load_config(path: str | Path) -> Config:
    """Read a TOML preset; its file stem is the default config_name."""
    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"config file not found: {path}", "--config configs/<name>.toml")
    try:
        with path.open("rb") as f:
            values = tomllib.load(f)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path} is not valid TOML: {err}", "see configs/*.toml") from None
    values.setdefault("config_name", path.stem)
    return config_from_dict(values, where=str(path))


def parse_config(argv: list[str] | None = None) -> Config:
    """Defaults, then `--config file.toml`, then `--field value` pairs (later wins)."""
    argv = list(argv or [])
    values: dict[str, Any] = {}
    if "--config" in argv:
        i = argv.index("--config")
        if i + 1 >= len(argv):
            raise ConfigError("--config needs a path", "--config configs/tiny.toml")
        values = dataclasses.asdict(load_config(argv[i + 1]))
        del argv[i : i + 2]
    if len(argv) % 2:
        raise ConfigError(f"expected --field value pairs, got {argv}",
                          "every option is --<config field> <value>")
    overrides = {}
    for flag, value in zip(argv[::2], argv[1::2]):
        if not flag.startswith("--"):
            raise ConfigError(f"expected --field, got {flag!r}", "options are --<field> <value>")
        overrides[flag[2:].replace("-", "_")] = value
    _check_keys(list(overrides), "command line")
    return config_from_dict({**values, **overrides}, where="command line")


def config_to_json(cfg: Config) -> str:
    return json.dumps(dataclasses.asdict(cfg), indent=2, sort_keys=True)

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

Likelihood = Literal["decoder", "encoder"]  # decoder: -log p(x|h); encoder: Bayes route via log q(h|x)
Weighting = Literal["uniform", "importance"]
ElboWeighting = Literal["elbo", "uniform"]
AucNorm = Literal["range", "none"]
BenchName = Literal["world", "cxc_sis", "cxc_sts", "stsb", "pairs_csv"]


@dataclass(frozen=True)
class Config:
    # --- run
    config_name: str = "default"  # run folder group: runs/<config_name>/<time>/
    out_dir: str = ""  # run folder; empty = runs/<config_name>/<YYYYmmdd-HHMMSS>
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    deterministic: bool = True
    wandb: bool = False  # mirror metrics to wandb (offline unless WANDB_MODE says otherwise)
    torch_threads: int = 0  # >0: torch.set_num_threads (1 is fastest on a shared CPU); 0 = default
    # --- procedural concept world (data.py / world.py)
    image_size: int = 32  # rendered scenes are image_size x image_size RGB
    world_pixel_noise: float = 0.03  # per-pixel Gaussian nuisance (never described)
    # --- models (model.py): stand-ins for the paper's VLM / text-to-image model / LLM
    model_dim: int = 64  # width of every transformer (describer, text LM, condition encoder)
    model_heads: int = 4
    model_layers: int = 2  # encoder and decoder layers of each seq2seq model
    unet_channels: tuple[int, ...] = (32, 64)  # diffusers UNet2DConditionModel block widths
    diffusion_steps: int = 100  # DDPM training steps T (linear betas)
    # --- optimisation
    steps: int = 600
    batch_size: int = 32
    lr: float = 1e-3
    grad_clip: float = 1.0  # 0 = off
    log_every: int = 20
    save_every: int = 200
    # --- CC:DAE scoring (ccdae.py)
    ccdae_max_complexity: int = 6  # budgets c = 0..C tokens (the grammar has 6 levels)
    ccdae_samples: int = 4  # descriptions sampled per sample and budget
    ccdae_temperature: float = 1.0  # describer sampling temperature
    ccdae_likelihood: Likelihood = "decoder"
    ccdae_weighting: Weighting = "importance"  # self-normalised weights ~ exp(-l(x|h)/beta)
    ccdae_beta: float = 1.0  # temperature of the relaxed (stochastic) description problem
    ccdae_auc_norm: AucNorm = "range"  # "range": divide the AUC by (c_max - c_min)
    ccdae_sep_threshold: float = 0.5  # d(c) above this fraction of max_c d(c) = "separated"
    elbo_timesteps: int = 10  # stratified timesteps of the ELBO estimate (shared noise)
    elbo_weighting: ElboWeighting = "elbo"
    # --- evaluation
    eval_pairs_per_level: int = 8  # world pairs per ground-truth similarity level
    eval_motivating_pairs: int = 8  # per motivating-case kind (pixel-near/concept-far and reverse)
    eval_triplets: int = 24  # 2AFC triplets
    eval_max_pairs: int = 0  # >0: score only the first N world pairs, no triplets (smoke checks)
    eval_modalities: tuple[str, ...] = ("image", "text")
    eval_seed: int = 1234
    eval_batch_pairs: int = 16  # pairs scored together by the batched scorer
    # --- real benchmarks and pretrained parts (README: folder trees)
    bench_name: BenchName = "world"
    data_root: str = ""  # folder holding the benchmark's published files
    bench_max_pairs: int = 0  # 0 = all pairs of the benchmark split
    pretrained_lm: str = ""  # HF causal LM folder: text likelihood log p(x|h)
    pretrained_captioner: str = ""  # HF image-to-text folder: image describer
    pretrained_t2i: str = ""  # diffusers Stable-Diffusion folder: image likelihood
    lpips_weights: str = ""  # torchvision AlexNet state dict for LPIPS; empty = random backbone


def _field_types() -> dict[str, Any]:
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in fields(Config)}


def _coerce(name: str, value: Any, typ: Any) -> Any:
    """Convert a TOML or CLI value to the field's type, or raise a ValueError naming the field."""
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
        except ValueError as err:
            raise ConfigError(f"{name}={value!r}: expected {typ.__name__}") from err
    if not isinstance(value, typ) or isinstance(value, bool) and typ is not bool:
        raise ConfigError(f"{name}={value!r}: expected {typ.__name__}")
    return value


def _check_keys(keys: list[str], where: str) -> None:
    valid = _field_types()
    unknown = [k for k in keys if k not in valid]
    if unknown:
        raise ConfigError(f"unknown config key(s) {unknown} in {where}; valid keys: {sorted(valid)}")


def config_from_dict(values: dict[str, Any], where: str = "dict") -> Config:
    """Build a Config from (possibly partial) values, checking keys and types."""
    _check_keys(list(values), where)
    types = _field_types()
    return Config(**{k: _coerce(k, v, types[k]) for k, v in values.items()})


def load_config(path: str | Path) -> Config:
    """Read a TOML preset; its file stem is the default config_name."""
    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"config file not found: {path}", "see configs/*.toml")
    try:
        with path.open("rb") as f:
            values = tomllib.load(f)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path} is not valid TOML: {err}", "TOML syntax") from err
    values.setdefault("config_name", path.stem)
    return config_from_dict(values, where=str(path))


def parse_config(argv: list[str] | None = None) -> Config:
    """Defaults, then `--config file.toml`, then `--field value` pairs (later wins)."""
    argv = list(argv or [])
    values: dict[str, Any] = {}
    if "--config" in argv:
        i = argv.index("--config")
        if i + 1 >= len(argv):
            raise ConfigError("--config needs a path")
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

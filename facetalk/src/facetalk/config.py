"""Config: one frozen dataclass; defaults < TOML preset (--config) < --field value overrides.

Hyper-parameters of the paper preset live in configs/paper.toml with their sources; the defaults
here are small CPU values.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

import tomllib

from .runtime import ConfigError, MissingPathError

Method = Literal["diffusion", "regression"]
DataName = Literal["synthetic", "nphm_talk"]
Sampler = Literal["ddim", "ddpm"]
Prediction = Literal["sample", "epsilon"]
HeadName = Literal["procedural", "nphm"]


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
    data_name: DataName = "synthetic"
    data_root: str = ""  # nphm_talk: folder tree described in README
    data_sample_rate: int = 16000  # wav2vec 2.0 input rate
    data_fps: int = 25  # motion frame rate
    data_clip_frames: int = 50  # training crop length in frames
    data_exp_dim: int = 200  # NPHM expression code size (nphm_def.yaml: 200)
    data_id_dim: int = 16  # identity code size (NPHM: 64 global + 39*32 local = 1312)
    data_num_identities: int = 6  # synthetic speakers
    data_num_sequences: int = 48  # synthetic training sequences
    data_seconds: float = 4.0  # synthetic sequence length
    # --- audio encoder (Sec. 3: wav2vec 2.0)
    audio_encoder_path: str = ""  # local wav2vec2 folder; empty = small random-init stand-in
    audio_hidden: int = 48  # stand-in hidden size
    audio_layers: int = 2  # stand-in transformer layers
    audio_train_encoder: bool = True  # fine-tune the wav2vec2 transformer (CNN stays frozen)
    # --- denoiser
    method: Method = "diffusion"  # diffusion = FaceTalk; regression = same backbone, deterministic
    model_dim: int = 64
    model_layers: int = 2
    model_heads: int = 4
    model_ff: int = 128
    model_dropout: float = 0.0
    model_causal: bool = False  # causal self-attention over frames
    model_audio_window: int = 0  # frame i cross-attends audio frames [i-w, i+w] (alignment mask)
    model_id_cond: bool = True  # identity/style conditioning from the identity code
    # --- diffusion (diffusers schedulers)
    diff_train_steps: int = 1000
    diff_beta_schedule: str = "squaredcos_cap_v2"
    diff_prediction: Prediction = "sample"  # network predicts x0 (sample) or noise (epsilon)
    diff_cond_drop: float = 0.1  # classifier-free guidance: drop audio with this probability
    diff_guidance: float = 1.0  # guidance scale at sampling (1 = conditional only)
    diff_sampler: Sampler = "ddim"
    diff_sample_steps: int = 50
    # --- losses
    loss_vel_weight: float = 1.0  # velocity (temporal) term
    loss_lip_weight: float = 0.0  # lip-vertex term on decoded procedural-head lips
    # --- head model (decoding codes to meshes)
    head_name: HeadName = "procedural"
    head_path: str = ""  # nphm: folder with deformer.pt + neutral.npz (see README)
    head_resolution: int = 24  # procedural head: latitude rings (longitude = 2x)
    # --- optimisation
    steps: int = 300
    batch_size: int = 16
    lr: float = 1e-3
    lr_warmup: int = 50
    grad_clip: float = 1.0  # 0 = off
    # --- logging / eval
    log_every: int = 20
    eval_every: int = 0  # 0 = only at the end
    save_every: int = 200
    eval_sequences: int = 4  # held-out sequences scored by eval
    eval_samples: int = 4  # samples per audio (diversity); the paper protocol uses 10
    eval_render: bool = True  # PNG frames + GIF of one generated sequence


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

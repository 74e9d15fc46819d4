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

BadFrame = Literal["skip", "error"]


@dataclass(frozen=True)
class Config:
    """Defaults are the official method's (HadiZayer/eyenerf `eyenerf_config.py`,
    `EyeNeRFModelConfig`, `config_hash.json`) and README run command."""

    # --- run
    config_name: str = "default"  # run folder group: runs/<config_name>/<time>/
    out_dir: str = ""  # run folder; empty = runs/<config_name>/<YYYYmmdd-HHMMSS>
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    deterministic: bool = True
    wandb: bool = False
    # --- data: an official capture folder (eye_radiance.data); empty = synthetic capture
    data_root: str = ""
    data_used_eye: Literal["both", "left_eye", "right_eye"] = "both"
    data_on_bad_frame: BadFrame = "skip"  # eye images without a usable mask: skip or stop
    data_erode_px: int = 13  # official cv2.erode kernel (13 x 13) of the sampling masks
    data_tiff_scale: Literal["dtype", "official"] = "dtype"  # official: /65535 only if max > 256
    synth_frames: int = 12
    synth_image_size: int = 96  # image height
    synth_width: int = 0  # image width; 0 = 2 x height
    synth_limbus_px: float = 0.0  # limbus radius in pixels; 0 = height / 8
    synth_noise: float = 0.01  # Gaussian image noise (std, colour in [0, 1])
    synth_iris_angular: float = 0.15  # angular (non-radial) part of the true iris texture
    # --- cornea and pose refinement
    model_cornea: Literal["ellipsoid", "sphere"] = "ellipsoid"  # sphere = the ablation
    model_implementation: Literal["auto", "torch", "tcnn"] = "auto"  # auto: tcnn on CUDA if present
    pose_refine: bool = True  # official: on from step 0
    # --- scene field (nerfacto) and proposal sampling
    field_hidden_dim: int = 64
    field_hidden_dim_color: int = 64
    field_num_levels: int = 16
    field_max_res: int = 2048
    field_log2_hashmap_size: int = 19
    prop_samples: tuple[int, ...] = (256, 96)  # per proposal network
    prop_max_res: tuple[int, ...] = (128, 256)  # one proposal network per entry
    prop_nerf_samples: int = 48
    prop_update_every: int = 5
    prop_warmup: int = 5000
    prop_anneal_slope: float = 10.0
    prop_anneal_iters: int = 1000
    render_near: float = 0.05  # m along the reflected ray
    render_far: float = 1000.0  # m
    render_background: Literal["last_sample", "black", "white", "random"] = "last_sample"
    scene_bound: float = 1.0  # m: the field's box is +-scene_bound around the camera
    # --- iris texture (hash grid 16 x 2, 2^15, base 16, scale 1.5 + MLP 2 x 64) and its prior
    texture: bool = True  # README run: --pipeline.model.use-texture-field True
    texture_num_levels: int = 16
    texture_log2_hashmap_size: int = 15
    texture_hidden: int = 64
    rot_loss_mult: float = 0.1  # README run: --pipeline.model.rot-loss-mult 0.1
    rot_angles: int = 20
    rot_prior: Literal["robust", "all"] = "robust"  # all: pull every rotation to the mean
    interlevel_mult: float = 1.0
    distortion_mult: float = 0.002
    # --- optimisation (Adam; exponential decay over lr_decay_steps as nerfstudio's scheduler)
    steps: int = 30000
    batch_rays: int = 4096
    lr_fields: float = 1e-2  # fields, texture and proposal networks, eps 1e-15
    lr_fields_final: float = 1e-4
    lr_pose: float = 6e-4  # eps 1e-8
    lr_pose_final: float = 6e-6
    pose_weight_decay: float = 1e-2
    lr_decay_steps: int = 200000
    mixed_precision: bool = True  # CUDA only (autocast + grad scaler), as the official
    # --- logging / eval
    log_every: int = 100
    save_every: int = 2000
    eval_size: int = 64  # novel-view resolution
    eval_fov_deg: float = 90.0
    lpips_backbone: str = ""  # torchvision AlexNet weights; empty = random backbone (labelled)


def _field_types() -> dict[str, Any]:
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in fields(Config)}


def _coerce(name: str, value: Any, typ: Any) -> Any:
    """Convert a TOML or CLI value to the field's type, or raise a ConfigError naming the field."""
    origin = typing.get_origin(typ)
    if origin is Literal:
        choices = typing.get_args(typ)
        if value not in choices:
            raise ConfigError(f"{name}={value!r}: expected one of {choices}", "config value")
        return value
    if origin is tuple:
        (item_type, _) = typing.get_args(typ)
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise ConfigError(f"{name}={value!r}: expected a list", "config value")
        return tuple(_coerce(name, v, item_type) for v in items)
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "1", "false", "0"}:
            return value.lower() in {"true", "1"}
        raise ConfigError(f"{name}={value!r}: expected true/false/1/0", "config value")
    if typ is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and typ is not str:
        try:
            return typ(value.strip())
        except ValueError as err:
            raise ConfigError(f"{name}={value!r}: expected {typ.__name__}", "config value") from err
    if not isinstance(value, typ) or isinstance(value, bool) and typ is not bool:
        raise ConfigError(f"{name}={value!r}: expected {typ.__name__}", "config value")
    return value


def _check_keys(keys: list[str], where: str) -> None:
    valid = _field_types()
    unknown = [k for k in keys if k not in valid]
    if unknown:
        raise ConfigError(f"unknown config key(s) {unknown} in {where}",
                          f"valid keys: {', '.join(sorted(valid))}")


POSITIVE = ("batch_rays", "field_hidden_dim", "field_hidden_dim_color", "field_num_levels",
            "field_max_res", "prop_nerf_samples", "prop_update_every", "texture_num_levels",
            "texture_hidden", "rot_angles", "lr_fields", "lr_fields_final", "lr_pose",
            "lr_pose_final", "lr_decay_steps", "render_far", "scene_bound", "eval_size",
            "synth_frames", "prop_anneal_iters", "log_every", "eval_fov_deg")
NON_NEGATIVE = ("steps", "save_every", "data_erode_px", "synth_noise", "synth_iris_angular",
                "rot_loss_mult", "interlevel_mult", "distortion_mult", "pose_weight_decay",
                "render_near", "prop_warmup", "prop_anneal_slope")


def validate(cfg: Config) -> Config:
    """Range checks that the types cannot express; raises ConfigError."""
    for name in POSITIVE + NON_NEGATIVE:
        value = getattr(cfg, name)
        if not math.isfinite(value) or value < 0 or (name in POSITIVE and value == 0):
            kind = "positive" if name in POSITIVE else "non-negative"
            raise ConfigError(f"{name}={value!r} must be a finite {kind} number", "config value")
    if not 10 <= cfg.field_log2_hashmap_size <= 24 or not 8 <= cfg.texture_log2_hashmap_size <= 24:
        raise ConfigError("log2 hash table sizes must lie in [10, 24] / [8, 24]", "config value")
    if len(cfg.prop_samples) != len(cfg.prop_max_res) or not cfg.prop_samples:
        raise ConfigError(f"prop_samples {cfg.prop_samples} and prop_max_res {cfg.prop_max_res} "
                          "need one entry per proposal network", "config value")
    if min(cfg.prop_samples + cfg.prop_max_res) <= 0:
        raise ConfigError("prop_samples and prop_max_res entries must be positive", "config")
    if cfg.synth_image_size < 32 or cfg.eval_size < 32 or cfg.render_near >= cfg.render_far:
        raise ConfigError("synth_image_size and eval_size must be >= 32 (LPIPS' AlexNet), "
                          "render_near < render_far", "config value")
    return cfg


def config_from_dict(values: dict[str, Any], where: str = "dict") -> Config:
    """Build a Config from (possibly partial) values, checking keys, types and ranges."""
    _check_keys(list(values), where)
    types = _field_types()
    return validate(Config(**{k: _coerce(k, v, types[k]) for k, v in values.items()}))


def load_config(path: str | Path) -> Config:
    """Read a TOML preset; its file stem is the default config_name."""
    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"config file not found: {path}", "--config configs/<name>.toml")
    try:
        with path.open("rb") as f:
            values = tomllib.load(f)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path} is not valid TOML: {err}", str(path)) from err
    values.setdefault("config_name", path.stem)
    return config_from_dict(values, where=str(path))


def parse_config(argv: list[str] | None = None) -> Config:
    """Defaults, then `--config file.toml`, then `--field value` pairs (later wins)."""
    argv = list(argv or [])
    values: dict[str, Any] = {}
    if "--config" in argv:
        i = argv.index("--config")
        if i + 1 >= len(argv):
            raise ConfigError("--config needs a path", "--config configs/<name>.toml")
        values = dataclasses.asdict(load_config(argv[i + 1]))
        del argv[i : i + 2]
    if len(argv) % 2:
        raise ConfigError(f"expected --field value pairs, got {argv}", "command line")
    overrides = {}
    for flag, value in zip(argv[::2], argv[1::2]):
        if not flag.startswith("--"):
            raise ConfigError(f"expected --field, got {flag!r}", "command line")
        overrides[flag[2:].replace("-", "_")] = value
    _check_keys(list(overrides), "command line")
    return config_from_dict({**values, **overrides}, where="command line")


def config_to_json(cfg: Config) -> str:
    return json.dumps(dataclasses.asdict(cfg), indent=2, sort_keys=True)

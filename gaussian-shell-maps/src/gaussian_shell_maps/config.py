"""Config: one frozen dataclass; defaults < TOML preset (--config) < --field value overrides."""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

import tomllib

DataName = Literal["synthetic", "shhq", "deepfashion"]
Background = Literal["white", "gray", "random"]
RenderBackend = Literal["auto", "torch", "gsplat"]


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
    data_root: str = ""  # SHHQ / DeepFashion folder: images + dataset.json (see README)
    data_num_synthetic: int = 256  # synthetic renders of procedurally textured mannequins
    data_resolution: int = 32  # render / image resolution (paper: 512, Sec. 4)
    smpl_path: str = ""  # folder holding smpl/SMPL_NEUTRAL.{pkl,npz} + smpl_uv.obj; empty = procedural
    background: Background = "white"  # official --bg_color
    render_backend: RenderBackend = "auto"  # auto = gsplat rasterization on CUDA, torch on CPU
    # --- shells and Gaussians (Sec. 3.2; official defaults)
    num_shells: int = 5  # official --num_shells
    offset_len: float = 0.05  # outward offset of the outermost shell; inner = 1.25x (official)
    num_gaussians: int = 1500  # total over all shells (official --total_num_gaussians)
    max_scaling: float = 0.02  # scale clamp after exp (official --max_scaling)
    perturb_points: bool = True  # resample barycentrics every batch (official --perturb_pts)
    # --- generator (StyleGAN2 mapping + synthesis of the texture stack)
    z_dim: int = 64  # paper/official 512
    w_dim: int = 64  # paper/official 512
    map_depth: int = 2  # official --map-depth
    tex_resolution: int = 32  # texture stack resolution (official tex_final_res 512)
    tex_channels: int = 32  # features per texel before the attribute decoders (official 64)
    channel_base: int = 1024  # StyleGAN2 cbase (official 32768)
    channel_max: int = 64  # StyleGAN2 cmax (official 512)
    decoder_hidden: int = 32  # Attdecoder hidden width (official 64)
    # --- discriminator
    d_channel_base: int = 1024
    d_channel_max: int = 64
    mbstd_group: int = 4  # official --mbstd-group
    use_face_disc: bool = False  # extra face discriminator on head crops (official use_face_dist)
    face_resolution: int = 16  # face crop resolution (official 128)
    face_weight: float = 1.0  # official --face_weight
    # --- losses (official defaults)
    r1_gamma: float = 10.0  # R1 weight (official --gamma; loss default 10)
    r1_interval: int = 16  # lazy R1 every N D steps (StyleGAN2 D_reg_interval)
    scale_reg_weight: float = 0.1  # official --reg_weight (L1 of log-scales to ref_scale)
    ref_scale: float = -5.0  # official --ref_scale (pre-activation log-scale target)
    opacity_reg_weight: float = 1.0  # official --opacity_reg (per-texel opacity sum to 1)
    blur_init_sigma: float = 10.0  # blur of D inputs at start, faded out (official)
    blur_fade_steps: int = 100  # steps over which the blur fades (official 200 kimg * batch/32)
    # --- optimisation (StyleGAN2 Adam)
    steps: int = 1000
    batch_size: int = 8
    g_lr: float = 0.0025
    d_lr: float = 0.002  # official --dlr
    ema_half_life_imgs: float = 10000.0  # G_ema half-life in images (StyleGAN2 ema_kimg=10)
    # --- logging / eval
    log_every: int = 10
    eval_every: int = 0  # 0 = only at the end
    save_every: int = 200
    eval_num_images: int = 128  # images for FID/KID
    inception_path: str = ""  # torchvision inception_v3 state dict; empty = stand-in features
    eval_keypoint_steps: int = 300  # training steps of the stand-in keypoint detector (PCK)


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

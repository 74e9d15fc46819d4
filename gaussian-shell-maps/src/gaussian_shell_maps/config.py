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

DataName = Literal["synthetic", "shhq", "deepfashion"]
LabelConvention = Literal["ours", "official"]
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
    data_root: str = ""  # SHHQ / DeepFashion: dataset.mat or dataset.json + images/ (+ masks/)
    data_num_synthetic: int = 256  # synthetic renders of procedurally textured mannequins
    data_resolution: int = 32  # render / image resolution (paper: 512, Sec. 4)
    data_label_convention: LabelConvention = "ours"  # synthetic labels: ours | official layout
    data_divide_fx: bool = True  # official get_label: fx /= H/W of tall images (--old_code off)
    # --- body model and shell meshes: names are absolute or inside smpl_path (official assets/)
    smpl_path: str = ""  # smpl/SMPL_NEUTRAL.{npz,pkl} (+ meshes below); empty = procedural
    base_mesh: str = ""  # UV mesh carrying the shells; "" = SMPL's own smpl_uv.obj
    shrunk_mesh: str = ""  # shrunk copy of the base for the inner shells; "" = normal offsets
    smpl_shrunk_mesh: str = ""  # SMPL-topology shrunk mesh (official smpl_uv_shrunk.obj)
    uv_mask: str = ""  # official mask_uv.png; "" = rasterised from the base mesh's UVs
    part_vertices: str = ""  # official parts_vertices.yaml (face crop); "" = head-skinned verts
    background: Background = "white"  # official --bg_color
    render_backend: RenderBackend = "auto"  # auto = gsplat rasterization on CUDA, torch on CPU
    # --- shells and Gaussians (Sec. 3.2; official defaults)
    num_shells: int = 5  # official --num_shells
    offset_len: float = 0.05  # outward offset of the outermost shell; inner = 1.25x (official)
    num_gaussians: int = 1500  # total over all shells (official --total_num_gaussians)
    max_scaling: float = 0.02  # scale clamp after exp (official --max_scaling)
    # resample barycentrics every batch; the official --perturb_pts flag never reaches the
    # renderer, so the released behaviour (and the paper preset) keeps them fixed
    perturb_points: bool = False
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
    ema_rampup: float = 0.05  # half-life <= rampup x images seen (official ema_rampup; 0 = off)
    # --- logging / eval
    log_every: int = 10
    eval_every: int = 0  # 0 = only at the end
    save_every: int = 200
    eval_num_images: int = 128  # images for FID/KID
    inception_path: str = ""  # torchvision inception_v3 state dict; empty = stand-in features
    eval_keypoint_steps: int = 300  # training steps of the stand-in keypoint detector (PCK)
    eval_garment_steps: int = 400  # training steps of GarmentNet (garment_fd, synthetic data)


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
        except ValueError as err:
            raise ConfigError(f"{name}={value!r}: expected {typ.__name__}") from err
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
    cfg = Config(**{k: _coerce(k, v, types[k]) for k, v in values.items()})
    _check_values(cfg, where)
    return cfg


# fields that must be positive / at least 0 (a value outside is a user mistake, said at once)
_POSITIVE = ("data_num_synthetic", "data_resolution", "num_shells", "num_gaussians", "z_dim",
             "w_dim", "map_depth", "tex_resolution", "tex_channels", "channel_base",
             "channel_max", "decoder_hidden", "d_channel_base", "d_channel_max", "mbstd_group",
             "r1_interval", "batch_size", "log_every", "save_every", "eval_num_images")
_NON_NEGATIVE = ("offset_len", "max_scaling", "r1_gamma", "scale_reg_weight",
                 "opacity_reg_weight", "blur_init_sigma", "blur_fade_steps", "steps", "g_lr",
                 "d_lr", "ema_half_life_imgs", "ema_rampup", "eval_every", "eval_keypoint_steps",
                 "eval_garment_steps",
                 "face_weight")


def _check_values(cfg: Config, where: str) -> None:
    bad = [f"{k}={getattr(cfg, k)!r} (must be > 0)" for k in _POSITIVE
           if not getattr(cfg, k) > 0]
    bad += [f"{k}={getattr(cfg, k)!r} (must be >= 0)" for k in _NON_NEGATIVE
            if hasattr(cfg, k) and not getattr(cfg, k) >= 0]
    if cfg.num_gaussians < cfg.num_shells:
        bad.append(f"num_gaussians={cfg.num_gaussians} < num_shells={cfg.num_shells}")
    if cfg.use_face_disc and cfg.face_resolution < 8:
        bad.append(f"face_resolution={cfg.face_resolution} (must be >= 8 with use_face_disc)")
    if cfg.data_resolution < 8:
        bad.append(f"data_resolution={cfg.data_resolution} (must be >= 8)")
    if bad:
        raise ConfigError(f"invalid config value(s) in {where}: {'; '.join(bad)}",
                          "see the comments in src/gaussian_shell_maps/config.py")


def load_config(path: str | Path) -> Config:
    """Read a TOML preset; its file stem is the default config_name."""
    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"config file not found: {path}", "e.g. configs/tiny.toml")
    try:
        with path.open("rb") as f:
            values = tomllib.load(f)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise ConfigError(f"{path} is not valid TOML: {type(err).__name__}: {err}",
                          "key = value lines, as in configs/tiny.toml") from err
    except OSError as err:
        raise MissingPathError(f"cannot read config file {path}: {type(err).__name__}") from err
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
        raise ConfigError(f"expected --field value pairs, got {argv}",
                          "e.g. --steps 100 --batch_size 8")
    overrides = {}
    for flag, value in zip(argv[::2], argv[1::2]):
        if not flag.startswith("--"):
            raise ConfigError(f"expected --field, got {flag!r}", "e.g. --steps 100")
        overrides[flag[2:].replace("-", "_")] = value
    _check_keys(list(overrides), "command line")
    return config_from_dict({**values, **overrides}, where="command line")


def config_to_json(cfg: Config) -> str:
    return json.dumps(dataclasses.asdict(cfg), indent=2, sort_keys=True)

"""Config: one frozen dataclass; defaults < TOML preset (--config) < --field value overrides."""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

import tomllib

BadFrame = Literal["skip", "error"]


@dataclass(frozen=True)
class Config:
    # --- run
    config_name: str = "default"  # run folder group: runs/<config_name>/<time>/
    out_dir: str = ""  # run folder; empty = runs/<config_name>/<YYYYmmdd-HHMMSS>
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    deterministic: bool = True
    wandb: bool = False
    # --- data: a sequence folder (see eye_radiance.data); empty = render the synthetic sequence
    data_root: str = ""
    data_on_bad_frame: BadFrame = "skip"  # frames without a detectable eye: skip (counted) or stop
    synth_frames: int = 12
    synth_image_size: int = 192
    synth_noise: float = 0.01  # Gaussian image noise (std, colour in [0, 1])
    synth_pose_noise_deg: float = 2.0  # known perturbation added to the ellipse-fit axes
    synth_pose_noise_mm: float = 0.5  # and to the limbus centres
    synth_iris_angular: float = 0.15  # angular (non-radial) part of the true iris texture
    # --- scene field (nerfacto-style hash grid)
    field_num_levels: int = 8
    field_log2_hashmap_size: int = 15
    field_min_res: int = 8
    field_max_res: int = 256
    field_hidden: int = 32
    field_aabb_min: tuple[float, ...] = (-1000.0, -1000.0, -800.0)  # mm, camera frame
    field_aabb_max: tuple[float, ...] = (1000.0, 1000.0, 1200.0)
    render_near: float = 5.0  # mm along the reflected ray
    render_far: float = 2500.0
    render_samples: int = 48
    # --- method switches and weights (the claim check turns these off one at a time)
    texture: bool = True  # learn the iris texture (texture decomposition)
    radial_weight: float = 0.1  # lambda_radial of the radial prior (0 = no prior)
    pose_refine: bool = True  # jointly refine the cornea poses
    pose_refine_start: int = 100  # poses frozen before this step (the field first forms)
    # --- optimisation
    steps: int = 2000
    batch_rays: int = 1024
    lr_field: float = 1e-2
    lr_texture: float = 1e-3
    lr_pose: float = 1e-3
    # --- logging / eval
    log_every: int = 25
    eval_every: int = 0  # 0 = only at the end
    save_every: int = 500
    eval_size: int = 32  # novel-view resolution
    eval_fov_deg: float = 90.0
    lpips_backbone: str = ""  # path to torchvision AlexNet weights; empty = random backbone


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

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

Family = Literal["vanilla_nerf", "tensorf", "dvgo", "plenoxels", "nerfacto"]
DataKind = Literal["synthetic", "blender", "nerfstudio", "llff"]
FAMILIES: tuple[str, ...] = typing.get_args(Family)


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
    data_kind: DataKind = "synthetic"  # synthetic = analytic spheres (scene.py)
    data_root: str = ""  # scene folder for blender / nerfstudio / llff (README has the trees)
    data_scene_scale: float = 1.0  # k: camera positions, near/far and bounds are multiplied by k
    data_image_size: int = 32  # synthetic: H = W
    data_num_train_views: int = 24  # synthetic
    data_num_test_views: int = 4  # synthetic
    data_downscale: int = 1  # real data: integer image downscale factor
    data_white_bkgd: bool = True  # composite RGBA / empty space onto white (Blender protocol)
    data_near: float = 0.0  # before scaling by k; 0 = the dataset's default
    data_far: float = 0.0  # before scaling by k; 0 = the dataset's default
    # --- model
    model_family: Family = "vanilla_nerf"
    recipe: bool = True  # the paper's recipe: log-space density + high-transmittance init (Sec. 4)
    recipe_target_transmittance: float = 0.99  # T of a whole ray at init (Sec. 4.2; README)
    model_num_samples: int = 64  # stratified samples per ray in [near, far]
    model_width: int = 64  # MLP width (vanilla NeRF, heads of the grid models)
    model_depth: int = 4  # MLP depth (vanilla NeRF)
    model_pe_freqs: int = 6  # positional-encoding octaves for positions (vanilla NeRF)
    model_grid_res: int = 48  # voxels per side (DVGO, Plenoxels) / plane size (TensoRF)
    model_tensorf_rank: int = 8  # VM components per plane for density (appearance uses 2x)
    model_hash_levels: int = 8  # Nerfacto hash-grid levels
    model_hash_log2_size: int = 15  # log2 entries per hash level
    model_hash_max_res: int = 256  # finest hash resolution
    model_raw_noise_std: float = 0.0  # vanilla NeRF baseline: noise on raw density while training
    # --- optimisation
    steps: int = 300
    batch_rays: int = 512
    lr: float = 5e-3  # MLP / network parameters (Adam)
    lr_grid: float = 5e-2  # explicit grids, planes, hash tables (Adam)
    lr_final_ratio: float = 0.1  # exponential decay to lr * ratio at the last step
    # --- logging / eval
    log_every: int = 20
    eval_every: int = 0  # 0 = only at the end
    save_every: int = 500
    eval_num_views: int = 0  # 0 = all test views
    eval_chunk: int = 4096  # rays per forward pass when rendering images
    eval_crop: int = 0  # 0 = whole held-out images; N = their central N x N pixels (smoke runs)
    eval_lpips_weights: str = ""  # torchvision VGG16 state_dict path; empty = random backbone

    def __post_init__(self) -> None:
        checks = [
            (math.isfinite(self.data_scene_scale) and self.data_scene_scale > 0,
             f"data_scene_scale (k) must be a finite number > 0, got {self.data_scene_scale}"),
            (0.0 < self.recipe_target_transmittance < 1.0,
             "recipe_target_transmittance must lie in (0, 1), got "
             + str(self.recipe_target_transmittance)),
            (self.model_num_samples >= 2, "model_num_samples must be >= 2"),
            (self.steps >= 0 and self.batch_rays >= 1, "need steps >= 0 and batch_rays >= 1"),
            (min(self.data_image_size, self.data_num_train_views, self.data_num_test_views,
                 self.data_downscale, self.model_width, self.model_depth, self.model_grid_res,
                 self.model_tensorf_rank, self.model_hash_levels, self.log_every,
                 self.save_every, self.eval_chunk) >= 1,
             "sizes, counts, log_every, save_every and eval_chunk must be >= 1"),
            (min(self.model_pe_freqs, self.eval_every, self.eval_num_views, self.eval_crop) >= 0,
             "model_pe_freqs, eval_every, eval_num_views and eval_crop must be >= 0"),
            (self.model_grid_res >= 2 and 4 <= self.model_hash_log2_size <= 24
             and self.model_hash_max_res >= 16,
             "need model_grid_res >= 2, model_hash_log2_size in [4, 24], model_hash_max_res >= 16"),
            (all(math.isfinite(v) and v >= 0 for v in (self.lr, self.lr_grid,
                                                       self.model_raw_noise_std))
             and 0 < self.lr_final_ratio <= 1 and self.data_near >= 0 and self.data_far >= 0,
             ("lr, lr_grid, model_raw_noise_std, data_near, data_far must be finite and >= 0, "
              "lr_final_ratio in (0, 1]")),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message, "see configs/paper.toml for the meaning of each key")


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
    return Config(**{k: _coerce(k, v, types[k]) for k, v in values.items()})


def load_config(path: str | Path) -> Config:
    """Read a TOML preset; its file stem is the default config_name."""
    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"config file not found: {path}", "see configs/ for the presets")
    try:
        values = tomllib.loads(path.read_bytes().decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path} is not valid TOML: {err}", "check its syntax") from None
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
        raise ConfigError(f"expected --field value pairs, got {argv}", "python train.py --help")
    overrides = {}
    for flag, value in zip(argv[::2], argv[1::2]):
        if not flag.startswith("--"):
            raise ConfigError(f"expected --field, got {flag!r}", "python train.py --help")
        overrides[flag[2:].replace("-", "_")] = value
    _check_keys(list(overrides), "command line")
    return config_from_dict({**values, **overrides}, where="command line")


def config_to_json(cfg: Config) -> str:
    return json.dumps(dataclasses.asdict(cfg), indent=2, sort_keys=True)

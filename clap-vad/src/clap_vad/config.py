"""Config: one frozen dataclass; defaults < TOML preset (--config) < --field value overrides."""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from .runtime import ConfigError, MissingPathError

DataName = Literal["synthetic", "ucf", "xd"]
Split = Literal["random", "event", "scene"]
Mode = Literal["collaborative", "local", "central"]
Strategy = Literal["fedavg", "fedprox", "scaffold"]
Backend = Literal["inprocess", "ray"]
Layout = Literal["files", "concat"]
EventRule = Literal["official", "by_name"]
WindowRule = Literal["official", "at_least_one"]


@dataclass(frozen=True)
class Config:
    # --- run
    config_name: str = "default"  # run folder group: runs/<config_name>/<time>/
    out_dir: str = ""  # run folder; empty = runs/<config_name>/<YYYYmmdd-HHMMSS>
    seed: int = 42  # train.sh --seed 42
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    deterministic: bool = True
    wandb: bool = False  # mirror metrics to wandb (offline unless WANDB_MODE says otherwise)
    # --- data (README: folder trees of the published feature files)
    data_name: DataName = "synthetic"
    data_root: str = ""  # folder with list files, per-video .npy features and gt.npy
    data_feature_dim: int = 2048  # I3D: 2048 (UCF-Crime), 1024 (XD-Violence)
    data_num_crops: int = 10  # ten-crop (UCF-Crime), five-crop (XD-Violence)
    data_frames_per_snippet: int = 16  # snippet score repeated over 16 frames (Sec. 5.1)
    data_layout: Layout = "files"  # files: list of per-video .npy; concat: official concat arrays
    data_path_map: str = ""  # "old_prefix=new_prefix;..." rewrites of list entries (README, Data)
    data_gt_truncate: bool = False  # official evaluate_ucf: gt[:16 x test snippets] (XD gt is longer)
    # --- synthetic surveillance features (default of tiny.toml and the tests)
    syn_num_scenes: int = 4
    syn_num_events: int = 3  # anomalous event classes
    syn_train_videos_per_scene: int = 24
    syn_test_videos_per_scene: int = 8
    syn_anomalous_fraction: float = 0.35  # of training videos; test videos: one half
    syn_min_snippets: int = 24
    syn_max_snippets: int = 48
    syn_rank: int = 4  # rank of the per-scene low-rank normal dynamics
    syn_event_strength: float = 1.5  # magnitude of the planted event direction
    syn_scene_confusion: float = 0.8  # how much each scene's normal mean leans to an event
    # --- participants (Sec. 4: three data organisations) and training mode
    mode: Mode = "collaborative"  # collaborative (CLAP) | local (each alone) | central
    split: Split = "scene"  # random | event | scene (train.sh: --datasplit scene)
    num_participants: int = 4  # random split only; event/scene splits: one per class/scene
    split_event_rule: EventRule = "official"  # official index ranges (810-vs-809 quirk) | by_name
    # --- pseudo-labels (CKDS, Sec. 3.1; official data/utils/datasets.py)
    pl_gmm_max_iter: int = 150
    pl_window_ratio: float = 0.2  # anomalous window = 20% of an anomalous video
    pl_window_rule: WindowRule = "official"  # official: int(0.2 T) may be 0 (T < 5: no positive)
    pl_share_stats: bool = True  # CKDS: share (mu, var, n) of normal snippets (false: own only)
    pl_refine_every: int = 0  # rounds between score-based refinements (0 = off, official)
    pl_refine_window_ratio: float = 0.1
    # --- scorer network (official C2FPL_ucf)
    model_hidden1: int = 512
    model_hidden2: int = 32
    model_dropout: float = 0.6
    model_attention: bool = False  # softmax-attention gates (defined, unused in official forward)
    model_xavier_init: bool = True  # official C2FPL_ucf; false = PyTorch default (official C2FPL_XD)
    # --- federated optimisation (train.sh)
    fl_strategy: Strategy = "fedavg"
    fl_backend: Backend = "ray"  # Flower simulation backend (inprocess: no Ray, same apps)
    fl_fraction_train: float = 1.0  # join_ratio 1
    fl_proximal_mu: float = 1.0  # FedProx mu (official --mu default)
    fl_fail_participant: int = -1  # fault injection: this participant raises in fl_fail_round
    fl_fail_round: int = 1
    steps: int = 100  # communication rounds (global_epoch); local/central: rounds of epochs
    local_epochs: int = 10  # train.sh --local_epoch 10
    batch_size: int = 128
    lr: float = 0.01  # SGD local_lr
    momentum: float = 0.0
    weight_decay: float = 0.0
    train_shuffle: bool = True  # reshuffle snippets each epoch; official client DataLoader: false
    # --- logging / eval
    eval_every: int = 1  # rounds between evaluations of the global model (test_gap 1)
    save_every: int = 1  # rounds between checkpoints (last.pt)


def _field_types() -> dict[str, Any]:
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in fields(Config)}


def _coerce(name: str, value: Any, typ: Any) -> Any:
    """Convert a TOML or CLI value to the field's type, or raise a ConfigError naming the field."""
    origin = typing.get_origin(typ)
    if origin is Literal:
        choices = typing.get_args(typ)
        if value not in choices:
            raise ConfigError(f"{name}={value!r}: expected one of {choices}", "README, Commands")
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
    if isinstance(value, str) and "\x00" in value:
        raise ConfigError(f"{name}: text holds a NUL character")
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
    validate(cfg, where)
    return cfg


# (field, lowest allowed, highest allowed or None, lowest is exclusive)
_RANGES = [("steps", 1, None, False), ("local_epochs", 1, None, False),
           ("batch_size", 1, None, False), ("lr", 0.0, None, True), ("momentum", 0.0, 1.0, False),
           ("weight_decay", 0.0, None, False), ("num_participants", 1, None, False),
           ("data_feature_dim", 1, None, False), ("data_num_crops", 1, None, False),
           ("data_frames_per_snippet", 1, None, False), ("model_hidden1", 1, None, False),
           ("model_hidden2", 1, None, False), ("model_dropout", 0.0, 0.999, False),
           ("pl_gmm_max_iter", 1, None, False), ("pl_window_ratio", 0.0, 1.0, False),
           ("pl_refine_every", 0, None, False), ("pl_refine_window_ratio", 0.0, 1.0, False),
           ("fl_fraction_train", 0.0, 1.0, True), ("fl_proximal_mu", 0.0, None, False),
           ("eval_every", 1, None, False), ("save_every", 1, None, False),
           ("syn_num_scenes", 1, None, False), ("syn_num_events", 1, None, False),
           ("syn_train_videos_per_scene", 1, None, False), ("syn_test_videos_per_scene", 2, None, False),
           ("syn_anomalous_fraction", 0.0, 1.0, False), ("syn_min_snippets", 8, None, False),
           ("syn_rank", 1, None, False), ("syn_event_strength", 0.0, None, False),
           ("syn_scene_confusion", 0.0, None, False)]


def validate(cfg: Config, where: str = "config") -> None:
    """Ranges and cross-field rules; a ConfigError names the field and the allowed values."""
    for name, low, high, exclusive in _RANGES:
        value = getattr(cfg, name)
        if not math.isfinite(value) or (value <= low if exclusive else value < low) or (
                high is not None and value > high):
            bound = f"{'>' if exclusive else '>='} {low}" + (f" and <= {high}" if high else "")
            raise ConfigError(f"{name}={value!r} in {where}: must be {bound}")
    if cfg.syn_max_snippets < cfg.syn_min_snippets:
        raise ConfigError(f"syn_max_snippets={cfg.syn_max_snippets} < syn_min_snippets="
                          f"{cfg.syn_min_snippets} in {where}")
    if cfg.data_name == "synthetic" and cfg.data_root:
        raise ConfigError(f"data_root={cfg.data_root!r} is given but data_name='synthetic' "
                          "generates its own data", "add --data_name ucf or --data_name xd, "
                          "or drop --data_root")


def load_config(path: str | Path) -> Config:
    """Read a TOML preset; its file stem is the default config_name."""
    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"config file not found: {path}", "see configs/*.toml")
    try:
        with path.open("rb") as f:
            values = tomllib.load(f)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {path} is not valid TOML: {err}") from None
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
                          "every --field takes one value")
    overrides = {}
    for flag, value in zip(argv[::2], argv[1::2]):
        if not flag.startswith("--"):
            raise ConfigError(f"expected --field, got {flag!r}", "every --field takes one value")
        overrides[flag[2:].replace("-", "_")] = value
    _check_keys(list(overrides), "command line")
    return config_from_dict({**values, **overrides}, where="command line")


def config_to_json(cfg: Config) -> str:
    return json.dumps(dataclasses.asdict(cfg), indent=2, sort_keys=True)

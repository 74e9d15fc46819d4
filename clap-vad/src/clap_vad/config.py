"""Config: one frozen dataclass; defaults < TOML preset (--config) < --field value overrides."""

from __future__ import annotations

import dataclasses
import json
import tomllib
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

DataName = Literal["synthetic", "ucf", "xd"]
Split = Literal["random", "event", "scene"]
Mode = Literal["collaborative", "local", "central"]
Strategy = Literal["fedavg", "fedprox", "scaffold"]
Backend = Literal["inprocess", "ray"]


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
    # --- pseudo-labels (CKDS, Sec. 3.1; official data/utils/datasets.py)
    pl_gmm_max_iter: int = 150
    pl_window_ratio: float = 0.2  # anomalous window = 20% of an anomalous video
    pl_share_stats: bool = True  # CKDS: share (mu, var, n) of normal snippets (false: own only)
    pl_refine_every: int = 0  # rounds between score-based refinements (0 = off, official)
    pl_refine_window_ratio: float = 0.1
    # --- scorer network (official C2FPL_ucf)
    model_hidden1: int = 512
    model_hidden2: int = 32
    model_dropout: float = 0.6
    model_attention: bool = False  # softmax-attention gates (defined, unused in official forward)
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
    # --- logging / eval
    eval_every: int = 1  # rounds between evaluations of the global model (test_gap 1)
    save_every: int = 1  # rounds between checkpoints (last.pt)


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

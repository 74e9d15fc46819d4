"""Run-time helpers: user errors and the CLI wrapper, seeding, device, atomic checkpoints with a
previous copy, metrics logging."""

from __future__ import annotations

import json
import os
import pickle
import random
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT_VERSION = 1
SUBPROJECT = "facetalk"


# ----------------------------------------------------------------------------- user errors
class UserError(Exception):
    """A mistake in what the user gave (config key or value, dataset, checkpoint, output folder).

    `str(err)` is one line, "<what> (<where to look>)"; `cli` prints it and exits with status 2.
    Programming errors are never UserErrors: they keep their traceback."""

    def __init__(self, what: str, where: str = "") -> None:
        self.what, self.where = what, where
        text = f"{what} ({where})" if where else what
        super().__init__(" ".join(text.split()))  # one line, whatever the parts held


class ConfigError(UserError, ValueError):
    """Unknown config key, wrong type or value, missing preset file."""


class DataError(UserError, ValueError):
    """A dataset or benchmark file that exists but cannot be read as its documented layout."""


class MissingPathError(UserError, FileNotFoundError):
    """A file or folder the config names does not exist."""


class CheckpointError(UserError, ValueError):
    """A checkpoint that is missing, unreadable, or from another subproject or config."""


def cli(main: Callable[[list[str]], Any], argv: list[str] | None = None) -> None:
    """Run a script's `main(argv)`: a UserError becomes one line `error: ...` on stderr and exit
    status 2; `--debug` (removed before `main` sees argv) lets it raise with its traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    try:
        main(argv)
    except UserError as err:
        if debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def set_determinism(enabled: bool) -> None:
    """Deterministic kernels on (CPU presets) or off (paper presets, for speed)."""
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    torch.backends.cudnn.benchmark = not enabled


def resolve_device(name: str) -> torch.device:
    """`auto` -> cuda when available, else cpu; anything else is passed to torch.device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ConfigError(f"device={name!r} is not a device name",
                          "use auto, cpu, cuda or cuda:N") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r} requested but CUDA is not available",
                          "use --device auto or cpu")
    return device


def cuda_memory_record(device: torch.device) -> dict[str, float]:
    """{"cuda_max_mem_mib": peak allocated} on CUDA (logged with the train records), else {}."""
    if device.type != "cuda":
        return {}
    return {"cuda_max_mem_mib": torch.cuda.max_memory_allocated(device) / 2**20}


def make_run_dir(out_dir: str, config_name: str) -> Path:
    """`out_dir` when given, else runs/<config_name>/<YYYYmmdd-HHMMSS>/."""
    path = Path(out_dir) if out_dir else Path("runs") / config_name / time.strftime("%Y%m%d-%H%M%S")
    try:
        (path / "ckpt").mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"  # per process: DDP ranks share the folder
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise UserError(f"cannot write the run folder {path}: {err.strerror or err}",
                        "choose another --out_dir") from err
    return path


def previous_path(path: str | Path) -> Path:
    """ckpt/last.pt -> ckpt/last.prev.pt: the copy kept until a new checkpoint is complete."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def save_checkpoint(path: str | Path, **state: Any) -> None:
    """Write `state` (plain types and state dicts) so that a complete checkpoint exists at every
    instant: write *.tmp and fsync it, move the current file to *.prev.pt, move *.tmp in place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        torch.save({"format_version": FORMAT_VERSION, **state}, f)
        f.flush()
        os.fsync(f.fileno())
    if path.exists():
        os.replace(path, previous_path(path))
    os.replace(tmp, path)


def _unreadable_reason(err: BaseException) -> str:
    """Why torch.load failed, in our words: torch's own text for a refused pickle advises
    turning safe loading off, which must never reach a user holding a file of unknown origin."""
    if isinstance(err, pickle.UnpicklingError):
        return "not a PyTorch checkpoint, or it holds objects that safe loading refuses"
    if isinstance(err, EOFError):
        return "the file is empty or ends early"
    if isinstance(err, (RuntimeError, zipfile.BadZipFile)) and "zip" in str(err).lower():
        return "truncated or damaged (its zip archive is incomplete)"
    if isinstance(err, (KeyError, ValueError, UnicodeDecodeError, RuntimeError)):
        return f"not a PyTorch checkpoint file ({type(err).__name__})"
    return type(err).__name__


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by `save_checkpoint` (weights_only, on CPU); anything else is
    a CheckpointError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}", "pass <run>/ckpt/last.pt")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 (torch.load raises many types for damaged files)
        raise CheckpointError(f"not a readable checkpoint of {SUBPROJECT}: {path}",
                              _unreadable_reason(err)) from None
    if not isinstance(ckpt, dict) or ckpt.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"not a readable checkpoint of {SUBPROJECT}: {path}",
                              f"no format_version {FORMAT_VERSION} record")
    return ckpt


def resume_checkpoint(ckpt_dir: str | Path, name: str = "last.pt") -> dict[str, Any] | None:
    """The newest readable checkpoint of a run: `last.pt`, else `last.prev.pt` (with a warning
    on stderr); None when neither exists; CheckpointError when neither can be read."""
    last = Path(ckpt_dir) / name
    prev = previous_path(last)
    if not last.exists() and not prev.exists():
        return None
    try:
        return load_checkpoint(last)
    except CheckpointError as err:
        if not prev.exists():
            raise
        ckpt = load_checkpoint(prev)
        reason = (err.where or err.what) if last.exists() else "missing"
        print(f"warning: {last} is not readable ({reason}); resuming from "
              f"{prev} (step {ckpt.get('step')})", file=sys.stderr)
        return ckpt


class MetricsLogger:
    """Appends one JSON object per call to run_dir/metrics.jsonl; mirrors to wandb if enabled."""

    def __init__(self, run_dir: str | Path, wandb: bool = False, config: dict | None = None,
                 project: str = "facetalk") -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._wandb = None
        if wandb:
            try:
                import wandb as wandb_lib
            except ImportError as err:
                raise ImportError("wandb=true needs `pip install -e '.[wandb]'`") from err
            os.environ.setdefault("WANDB_MODE", "offline")
            self._wandb = wandb_lib.init(project=project, config=config, dir=str(run_dir))

    def log(self, step: int, split: str = "train", progress: Any = None, **metrics: float) -> None:
        """Record `metrics` at `step`; `progress` is an optional tqdm bar whose postfix is updated."""
        record = {"step": int(step), "split": split, **{k: float(v) for k, v in metrics.items()}}
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if progress is not None:
            progress.set_postfix({k: f"{v:.4g}" for k, v in metrics.items()}, refresh=False)
        if self._wandb is not None:
            self._wandb.log({f"{split}/{k}": v for k, v in metrics.items()}, step=int(step))

    def close(self) -> None:
        if self._wandb is not None:
            self._wandb.finish()


def read_metrics(run_dir: str | Path) -> list[dict]:
    """All records of run_dir/metrics.jsonl."""
    with (Path(run_dir) / "metrics.jsonl").open() as f:
        return [json.loads(line) for line in f if line.strip()]

"""Run-time helpers: user errors and the CLI wrapper, seeding, device, checkpoints (atomic writes
with the previous one kept, safe reads, resume with fallback), metrics logging."""

from __future__ import annotations

import json
import os
import pickle
import random
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT_VERSION = 1
SUBPROJECT = "pathdino"


class UserError(Exception):
    """A mistake in what the user gave (config, data, checkpoint, output folder).

    `str(err)` is one line: "<what> (<where to look>)". The CLIs print it as `error: ...` and
    exit with status 2 (`cli`); anything else is a bug and keeps its traceback.
    """

    def __init__(self, what: str, where: str = "") -> None:
        super().__init__(what, where)
        self.what, self.where = str(what), str(where)

    def __str__(self) -> str:
        text = f"{self.what} ({self.where})" if self.where else self.what
        return " ".join(text.split())  # one line, whatever the parts held


class ConfigError(UserError, ValueError):
    """Unknown config key, wrong type or impossible value."""


class MissingPathError(UserError, FileNotFoundError):
    """A file or folder the user named does not exist."""


class CheckpointError(UserError, ValueError):
    """A checkpoint that is missing, unreadable, foreign or of another config."""


class DataError(UserError, ValueError):
    """A dataset file or folder that exists but cannot be used."""


def cli(main: Callable[[list[str]], Any], argv: list[str] | None = None) -> None:
    """Run `main(argv)`; a UserError becomes one line `error: ...` on stderr and exit status 2.

    `--debug` (removed before main sees the arguments) lets the UserError propagate with its
    traceback. Any other exception propagates unchanged.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    try:
        main(args)
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
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={name!r} requested but CUDA is not available; "
                           "use 'auto' or 'cpu'")
    return device


def make_run_dir(out_dir: str, config_name: str) -> Path:
    """`out_dir` when given, else runs/<config_name>/<YYYYmmdd-HHMMSS>/ (with ckpt/ inside)."""
    path = Path(out_dir) if out_dir else Path("runs") / config_name / time.strftime("%Y%m%d-%H%M%S")
    ensure_writable_dir(path / "ckpt", "out_dir")
    return path


def ensure_writable_dir(path: Path, key: str) -> Path:
    """mkdir -p and check that files can be created there, else a UserError naming `key`."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise UserError(f"cannot write to {path} ({type(err).__name__}: {err.strerror or err})",
                        f"choose a writable folder with --{key}") from err
    return path


def previous_path(path: Path) -> Path:
    """ckpt/last.pt -> ckpt/last.prev.pt (the checkpoint kept while the next one is written)."""
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def save_checkpoint(path: str | Path, **state: Any) -> None:
    """Write `state` (plain types and state dicts) so that a complete checkpoint always exists.

    Writes <name>.tmp, flushes and fsyncs it, renames the current file (if any) to
    <stem>.prev<suffix>, then renames the .tmp into place.
    """
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


def _unreadable(path: Path, reason: str) -> CheckpointError:
    return CheckpointError(f"not a readable checkpoint of {SUBPROJECT}: {path}", reason)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by `save_checkpoint` (weights_only, on CPU) or raise
    CheckpointError. The reason is ours, from the exception type: torch's unpickling message
    advises weights_only=False, which must never be done with a file of unknown origin."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}",
                              "give the path to <run>/ckpt/last.pt written by train.py")
    try:
        with warnings.catch_warnings():  # e.g. pickle-protocol notes: the error says enough
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise _unreadable(path, "not a torch.save file, or it holds objects other than tensors "
                                "and plain types") from None
    except Exception as err:  # noqa: BLE001 - any failure of a foreign/corrupt file is the same
        raise _unreadable(path, f"truncated or corrupted file ({type(err).__name__})") from None
    if not isinstance(ckpt, dict):
        raise _unreadable(path, f"holds a {type(ckpt).__name__}, not a checkpoint dict")
    if ckpt.get("format_version") != FORMAT_VERSION:
        raise _unreadable(path, f"format_version {ckpt.get('format_version')!r}, expected "
                                f"{FORMAT_VERSION}")
    return ckpt


def resume_checkpoint(ckpt_dir: str | Path, name: str = "last.pt") -> dict[str, Any] | None:
    """The newest readable checkpoint of a run: last.pt, else last.prev.pt (with a warning on
    stderr), else None when neither exists. Both present and unreadable: CheckpointError."""
    last = Path(ckpt_dir) / name
    prev = previous_path(last)
    if not last.exists() and not prev.exists():
        return None
    try:
        return load_checkpoint(last)
    except CheckpointError as err:
        if not prev.exists():
            raise
        reason = err.where if last.exists() else "missing"
    try:
        ckpt = load_checkpoint(prev)
    except CheckpointError as err:
        raise CheckpointError(f"neither {last} nor {prev} is a readable checkpoint",
                              f"{reason}; {err.where}; delete them to start afresh") from None
    print(f"warning: {last} is not readable ({reason}); resuming from {prev} "
          f"(step {ckpt.get('step')})", file=sys.stderr)
    return ckpt


class MetricsLogger:
    """Appends one JSON object per call to run_dir/metrics.jsonl; mirrors to wandb if enabled."""

    def __init__(self, run_dir: str | Path, wandb: bool = False, config: dict | None = None,
                 project: str = "pathdino") -> None:
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
        """Record `metrics` at `step`; `progress` is an optional tqdm bar (postfix updated)."""
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

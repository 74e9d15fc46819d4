"""Run-time helpers: user errors and the CLI wrapper, seeding, device, checkpoints, metrics logging.

Checkpoint contract (issue 23, the same in every subproject of the repository):
- `save_checkpoint` writes `<name>.tmp`, fsyncs it, moves an existing `last.pt` to `last.prev.pt`,
  then moves the temporary file into place, so at every instant one complete checkpoint exists.
- `load_checkpoint` reads with `weights_only=True` and turns every failure into a `CheckpointError`
  whose reason we word ourselves (never torch's advice to weaken safe loading).
- `resume_checkpoint` tries `last.pt`, then `last.prev.pt` (with a one-line warning).
"""

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
SUBPROJECT = "clap-vad"


# ----------------------------------------------------------------------------- user errors


class UserError(Exception):
    """A mistake in what the user gave (config, data, checkpoint, output folder).

    `str(err)` is one line: "<what> (<where to look>)".
    """

    def __init__(self, what: str, where: str = "") -> None:
        self.what = " ".join(str(what).split())  # one line, whatever the parts held
        self.where = " ".join(str(where).split())
        super().__init__(f"{self.what} ({self.where})" if self.where else self.what)


class ConfigError(UserError, ValueError):
    """Unknown config key, wrong type or value, inconsistent settings."""


class MissingPathError(UserError, FileNotFoundError):
    """A file or folder the user named does not exist."""


class DataError(UserError, ValueError):
    """A dataset file exists but is malformed (list, features, ground truth)."""


class CheckpointError(UserError, ValueError):
    """A checkpoint that cannot be read, or that belongs to another config."""


def cli(main: Callable[[list[str]], Any], argv: list[str] | None = None) -> None:
    """Run `main(argv)`; a UserError becomes one `error: ...` line on stderr and exit status 2.

    `--debug` (removed before `main` sees the arguments) lets the UserError propagate with its
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


# ----------------------------------------------------------------------------- seeding, device


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
                          "use --device auto or --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"device={name!r} is not supported", "use auto, cpu, cuda or cuda:N")
    return device


def cuda_max_mem_mib(device: torch.device) -> dict[str, float]:
    """{"cuda_max_mem_mib": peak allocated MiB} on CUDA, {} elsewhere (logged with train records)."""
    if device.type != "cuda":
        return {}
    return {"cuda_max_mem_mib": torch.cuda.max_memory_allocated(device) / 2**20}


def make_run_dir(out_dir: str, config_name: str) -> Path:
    """`out_dir` when given, else runs/<config_name>/<YYYYmmdd-HHMMSS>/; checked writable."""
    path = Path(out_dir) if out_dir else Path("runs") / config_name / time.strftime("%Y%m%d-%H%M%S")
    try:
        (path / "ckpt").mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"  # per process: DDP ranks share the folder
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise UserError(f"cannot write the run folder {path}: {type(err).__name__}",
                        "give a writable --out_dir") from err
    return path


# ----------------------------------------------------------------------------- checkpoints


def _prev_path(path: Path) -> Path:
    """ckpt/last.pt -> ckpt/last.prev.pt"""
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def save_checkpoint(path: str | Path, **state: Any) -> None:
    """Write `state` (plain types and state dicts): tmp + fsync, keep the old file as *.prev."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save({"format_version": FORMAT_VERSION, **state}, f)
        f.flush()
        os.fsync(f.fileno())
    if path.exists():
        os.replace(path, _prev_path(path))
    os.replace(tmp, path)


def _reason(err: BaseException, path: Path) -> str:
    """Short reason, from the file's first bytes and the exception type (torch's own text may
    advise weights_only=False, which a user must never do with a file of unknown origin)."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:2] != b"PK" and head[:1] != b"\x80":  # neither torch's zip format nor a pickle
        return "truncated or not a torch.save file"
    if isinstance(err, pickle.UnpicklingError) and head[:2] == b"PK":
        return "refused by safe loading: it holds objects other than tensors and plain types"
    if isinstance(err, (EOFError, zipfile.BadZipFile, RuntimeError)):
        return "truncated or damaged torch.save file"
    return f"unreadable ({type(err).__name__})"


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by `save_checkpoint` (weights_only, on CPU); CheckpointError if not."""
    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"checkpoint not found: {path}",
                               "give <run>/ckpt/last.pt written by train.py")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - an untrusted file's failure is bad input
        raise CheckpointError(f"not a readable checkpoint of {SUBPROJECT}: {path}",
                              _reason(err, path)) from None
    if not isinstance(ckpt, dict) or ckpt.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"not a readable checkpoint of {SUBPROJECT}: {path}",
                              f"no format_version {FORMAT_VERSION} dict inside")
    missing = [k for k in ("step", "config", "model", "models") if k not in ckpt]
    if missing:
        raise CheckpointError(f"not a readable checkpoint of {SUBPROJECT}: {path}",
                              f"missing keys {missing}")
    return ckpt


def resume_checkpoint(ckpt_dir: str | Path) -> dict[str, Any] | None:
    """Newest readable checkpoint of a run: last.pt, else last.prev.pt (warning), else None.

    An unreadable last.pt is renamed last.corrupt.pt when last.prev.pt is used, so that the next
    save does not move it over the good last.prev.pt.
    """
    last = Path(ckpt_dir) / "last.pt"
    prev = _prev_path(last)
    if not prev.exists():
        return load_checkpoint(last) if last.exists() else None
    reason = "missing"
    if last.exists():
        try:
            return load_checkpoint(last)
        except CheckpointError as err:
            reason = err.where
    try:
        ckpt = load_checkpoint(prev)
    except CheckpointError as prev_err:
        raise CheckpointError(f"neither {last} nor {prev} is a readable checkpoint",
                              f"{reason}; {prev_err.where}; use another out_dir") from None
    print(f"warning: {last} is not readable ({reason}); resuming from {prev} "
          f"(step {ckpt['step']})", file=sys.stderr)
    if last.exists():  # keep it for inspection, but never rotate it over the good last.prev.pt
        os.replace(last, last.with_name(f"{last.stem}.corrupt{last.suffix}"))
    return ckpt


# ----------------------------------------------------------------------------- metrics


class MetricsLogger:
    """Appends one JSON object per call to run_dir/metrics.jsonl; mirrors to wandb if enabled."""

    def __init__(self, run_dir: str | Path, wandb: bool = False, config: dict | None = None,
                 project: str = "clap-vad") -> None:
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

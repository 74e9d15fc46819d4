"""Run-time helpers: user errors and the CLI wrapper, seeding, device, checkpoints, metrics.

Errors follow the contract shared by every subproject (issue 23): a mistake in what the user gave
raises a `UserError` subclass; `cli(main)` prints it as one line `error: ...` and exits with 2.
"""

from __future__ import annotations

import argparse
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
SUBPROJECT = "alpha-invariance"


# ----------------------------------------------------------------------------- user errors


class UserError(Exception):
    """A mistake in what the user gave (config, data, checkpoint, output folder).

    `str(err)` is one line: "<what> (<where to look>)"; newlines are folded into "; ".
    """

    def __init__(self, what: str, where: str = "") -> None:
        super().__init__(what, where)
        self.what, self.where = str(what), str(where)

    def __str__(self) -> str:
        text = f"{self.what} ({self.where})" if self.where else self.what
        return " ".join(part.strip() for part in text.splitlines() if part.strip())


class ConfigError(UserError, ValueError):
    """Unknown config key, wrong type or out-of-range value."""


class MissingPathError(UserError, FileNotFoundError):
    """A file or folder the user named does not exist."""

    __str__ = UserError.__str__  # OSError's own __str__ would print "[Errno what] where"


class CheckpointError(UserError, ValueError):
    """A checkpoint that is missing, unreadable, foreign, or of another configuration."""


class DataError(UserError, ValueError):
    """A dataset file that is malformed (bad JSON, missing keys, unreadable image ...)."""


def cli(main: Callable[[list[str]], Any], argv: list[str] | None = None) -> None:
    """Run `main(argv)`; a UserError becomes one line on stderr and exit status 2.

    `--debug` anywhere in argv is removed and lets the UserError propagate with its traceback.
    Any other exception propagates unchanged (a bug, not a user mistake).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    try:
        main(args)
    except UserError as err:
        if debug:
            raise
        print(f"error: {err}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


class ArgParser(argparse.ArgumentParser):
    """argparse for the scripts' own flags: a bad flag is a ConfigError (one line, exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(f"{self.prog}: {message}", f"python {self.prog} --help")


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
        raise ConfigError(f"device={name!r} is not a torch device",
                          "use auto, cpu, cuda or cuda:N") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r} requested but CUDA is not available",
                          "use --device auto or cpu")
    return device


def make_run_dir(out_dir: str, config_name: str) -> Path:
    """`out_dir` when given, else runs/<config_name>/<YYYYmmdd-HHMMSS>/."""
    path = Path(out_dir) if out_dir else Path("runs") / config_name / time.strftime("%Y%m%d-%H%M%S")
    try:
        (path / "ckpt").mkdir(parents=True, exist_ok=True)
        probe = path / f".write_test-{os.getpid()}"  # per process: DDP ranks share the folder
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise UserError(f"cannot write the run folder {path}: {type(err).__name__}",
                        "check --out_dir and its permissions") from err
    return path


# ----------------------------------------------------------------------------- checkpoints


def rng_state() -> dict[str, Any]:
    """Global torch RNG states (CPU, and every CUDA device when CUDA is initialised)."""
    state: dict[str, Any] = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["torch_cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` saved (CUDA states only when CUDA is present)."""
    if "torch_cpu" in state:
        torch.set_rng_state(state["torch_cpu"])
    if "torch_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["torch_cuda"])


def previous_path(path: str | Path) -> Path:
    """ckpt/last.pt -> ckpt/last.prev.pt (the checkpoint kept while the next one is written)."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def save_checkpoint(path: str | Path, **state: Any) -> None:
    """Write `state` so that a complete checkpoint exists at every instant.

    <name>.tmp is written and fsynced, the current file (if any) becomes <stem>.prev<suffix>,
    then the tmp file becomes `path`.
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


def _unreadable_reason(err: BaseException) -> str:
    """A short reason written from the exception type (never torch's advice text)."""
    if isinstance(err, pickle.UnpicklingError):
        return "not a torch checkpoint, or it holds objects that safe loading refuses"
    if isinstance(err, (zipfile.BadZipFile, EOFError)):
        return "truncated or corrupted file"
    if isinstance(err, RuntimeError):
        return "truncated or corrupted torch archive"
    if isinstance(err, IsADirectoryError):
        return "a folder, not a file"
    if isinstance(err, PermissionError):
        return "permission denied"
    if isinstance(err, OSError):  # torch's zip reader on a cut-off archive: EINVAL
        return "truncated or corrupted file"
    return f"unreadable ({type(err).__name__})"


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by `save_checkpoint` (weights_only, on CPU).

    Raises:
        CheckpointError: missing file, unreadable file, or not a checkpoint of this subproject.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}",
                              "train first, or point --ckpt at <run>/ckpt/last.pt")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure of a foreign file is the user's file
        raise CheckpointError(f"not a readable checkpoint of {SUBPROJECT}: {path}",
                              _unreadable_reason(err)) from None
    if not isinstance(ckpt, dict) or ckpt.get("format_version") != FORMAT_VERSION:
        found = ckpt.get("format_version") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"not a readable checkpoint of {SUBPROJECT}: {path}",
                              f"format_version {found!r}, expected {FORMAT_VERSION}")
    missing = [k for k in ("step", "config", "spec", "model") if k not in ckpt]
    if missing:
        raise CheckpointError(f"not a readable checkpoint of {SUBPROJECT}: {path}",
                              f"lacks {missing}")
    return ckpt


def resume_checkpoint(ckpt_dir: str | Path) -> dict[str, Any] | None:
    """The newest readable of <ckpt_dir>/last.pt and last.prev.pt, or None for a fresh start.

    Falls back to last.prev.pt with a one-line warning on stderr when last.pt is missing or
    unreadable; raises CheckpointError when both exist and neither is readable.
    """
    last = Path(ckpt_dir) / "last.pt"
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
        except CheckpointError as err_prev:
            raise CheckpointError(f"neither {last} nor {prev} is a readable checkpoint",
                                  f"{reason}; {err_prev.where}") from None
        print(f"warning: {last} is not readable ({reason}); resuming from {prev} "
              f"(step {int(ckpt['step'])})", file=sys.stderr, flush=True)
        return ckpt


# ----------------------------------------------------------------------------- metrics


class MetricsLogger:
    """Appends one JSON object per call to run_dir/metrics.jsonl; mirrors to wandb if enabled."""

    def __init__(self, run_dir: str | Path, wandb: bool = False, config: dict | None = None,
                 project: str = SUBPROJECT) -> None:
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

"""Run-time helpers: user errors and the CLI wrapper, seeding, device, checkpoints, logging.

User errors (a bad config key, a missing dataset, an unreadable checkpoint) are `UserError`s: the
CLIs print them as one line `error: <what> (<where to look>)` and exit with status 2 (`cli`);
`--debug` shows the traceback. Programming errors propagate unchanged.

Checkpoints are read with `torch.load(weights_only=True)` only, and written so that a complete
checkpoint exists at every instant: `<name>.tmp` (fsync'd), then the previous `last.pt` becomes
`last.prev.pt`, then the new file takes its place; `resume_checkpoint` falls back to
`last.prev.pt` when `last.pt` cannot be read.
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
SUBPROJECT = "gaussian-shell-maps"


class UserError(Exception):
    """A mistake in what the user gave; printed as one line `<what> (<where to look>)`."""

    def __init__(self, what: str, where: str = ""):
        self.what, self.where = what, where
        text = f"{what} ({where})" if where else what
        super().__init__(" ".join(str(text).split()))  # one line, whatever the parts hold


class ConfigError(UserError, ValueError):
    """Unknown config key, wrong type or value, unreadable preset."""


class MissingPathError(UserError, FileNotFoundError):
    """A file or folder the user named does not exist."""


class CheckpointError(UserError, ValueError):
    """A checkpoint that is missing, unreadable, of another subproject or another config."""


class DataError(UserError, ValueError):
    """A dataset, mesh or asset file in the wrong layout."""


def cli(main: Callable[[list[str]], Any], argv: list[str] | None = None) -> None:
    """Run `main(argv)`; a UserError becomes one `error: ...` line on stderr and exit status 2.

    `--debug` anywhere in argv is removed and lets the UserError propagate with its traceback.
    """
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
        raise ConfigError(f"device={name!r} is not a device", "use auto, cpu, cuda or cuda:N") \
            from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r} requested but CUDA is not available",
                          "use --device auto or --device cpu")
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
                        "choose a writable --out_dir") from err
    return path


def prev_path(path: str | Path) -> Path:
    """`ckpt/last.pt` -> `ckpt/last.prev.pt` (the checkpoint kept until the next one is whole)."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def save_checkpoint(path: str | Path, **state: Any) -> None:
    """Write `state` (plain types and state dicts) so that a whole checkpoint always exists:
    `<path>.tmp` written and fsync'd, the old `path` renamed to `<stem>.prev<suffix>`, then the
    new file renamed to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        torch.save({"format_version": FORMAT_VERSION, **state}, f)
        f.flush()
        os.fsync(f.fileno())
    if path.exists():
        os.replace(path, prev_path(path))
    os.replace(tmp, path)


# torch.load failures by exception type -> a short reason written here (torch's own text for an
# UnpicklingError advises weights_only=False, which must never reach a user)
_LOAD_REASONS = (
    (pickle.UnpicklingError, "not a weights-only torch checkpoint, or corrupted"),
    (zipfile.BadZipFile, "truncated or not a torch zip archive"),
    (EOFError, "truncated file"),
    (UnicodeDecodeError, "not a torch checkpoint"),
    (RuntimeError, "truncated or corrupted torch archive"),
    (OSError, "cannot be read"),
    (ValueError, "corrupted content"),
    (KeyError, "corrupted content"),
    (AttributeError, "corrupted content"),
    (IndexError, "corrupted content"),
    (TypeError, "corrupted content"),
)


def _unreadable(path: Path, reason: str) -> CheckpointError:
    return CheckpointError(f"not a readable checkpoint of {SUBPROJECT}: {path}", reason)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by `save_checkpoint` (weights_only, on CPU).

    Raises CheckpointError (a UserError) for a missing file, a file torch cannot read safely
    (text, truncated, random bytes, disallowed pickle globals), or a foreign format.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}",
                              "give the ckpt/last.pt of a run folder")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - classified by type; torch's text is not shown
        reason = next((r for t, r in _LOAD_REASONS if isinstance(err, t)),
                      f"load failed ({type(err).__name__})")
        raise _unreadable(path, reason) from None
    if not isinstance(ckpt, dict):
        raise _unreadable(path, f"holds a {type(ckpt).__name__}, not a checkpoint dict")
    if ckpt.get("format_version") != FORMAT_VERSION:
        raise _unreadable(path, f"format_version {ckpt.get('format_version')!r}, "
                                f"expected {FORMAT_VERSION}")
    missing = [k for k in ("arch", "step", "config") if k not in ckpt]
    if missing:
        raise _unreadable(path, f"missing keys {missing}")
    if ckpt["arch"] != SUBPROJECT:
        raise _unreadable(path, f"written by {ckpt['arch']!r}")
    return ckpt


def resume_checkpoint(ckpt_dir: str | Path) -> dict[str, Any] | None:
    """The newest readable of `last.pt`, `last.prev.pt` in `ckpt_dir`; None when neither exists.

    Falls back to `last.prev.pt` with one warning line on stderr when `last.pt` is missing or
    unreadable (a run killed during a save, a truncated copy); both unreadable: CheckpointError.
    """
    last = Path(ckpt_dir) / "last.pt"
    prev = prev_path(last)
    if not last.exists() and not prev.exists():
        return None
    try:
        return load_checkpoint(last)
    except CheckpointError as err:
        if not prev.exists():
            raise
        try:
            ckpt = load_checkpoint(prev)
        except CheckpointError as err_prev:
            raise CheckpointError(f"neither {last} nor {prev} is a readable checkpoint of "
                                  f"{SUBPROJECT}", f"{err}; {err_prev}") from None
        reason = "missing" if not last.exists() else (err.where or str(err))
        print(f"warning: {last} is not readable ({reason}); resuming from {prev} "
              f"(step {ckpt['step']})", file=sys.stderr)
        return ckpt


class MetricsLogger:
    """Appends one JSON object per call to run_dir/metrics.jsonl; mirrors to wandb if enabled."""

    def __init__(self, run_dir: str | Path, wandb: bool = False, config: dict | None = None,
                 project: str = "gaussian-shell-maps") -> None:
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

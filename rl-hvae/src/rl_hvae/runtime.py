"""Run-time helpers: user errors and the CLI wrapper, seeding, device, crash-safe checkpoints,
RNG state capture, metrics logging."""

from __future__ import annotations

import json
import os
import pickle
import random
import re
import sys
import time
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

FORMAT_VERSION = 2  # 2: arch_skips in the config, CUDA RNG states, released architecture
SUBPROJECT = "rl-hvae"
CKPT_KEYS = ("format_version", "step", "config", "model", "optimizer")


class UserError(Exception):
    """A mistake in what the user gave (config, data, checkpoint, output folder): printed as one
    line `error: <what> (<where to look>)` by `cli`, exit status 2."""

    def __init__(self, what: str, where: str = "") -> None:
        self.what, self.where = what, where
        text = f"{what} ({where})" if where else what
        super().__init__(" ".join(text.split()))  # one line, whatever the parts contained


class ConfigError(UserError, ValueError):
    """Unknown config key, wrong type or out-of-range value."""


class MissingPathError(UserError, FileNotFoundError):
    """A file or folder the user named does not exist."""


class CheckpointError(UserError, ValueError):
    """A file that is not a readable rl-hvae checkpoint, or one of another configuration."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint path does not exist."""


class DataError(UserError, ValueError):
    """A dataset folder or file that is missing or malformed."""


def cli(main: Callable[[list[str]], Any], argv: list[str] | None = None) -> None:
    """Run `main(argv)` as a command: a UserError becomes one line on stderr and exit status 2;
    `--debug` lets it propagate with its traceback. Other exceptions propagate unchanged."""
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


def set_determinism(enabled: bool, device: torch.device) -> None:
    """Deterministic CUDA kernels on (CPU presets) or off (paper presets, for speed). The CPU
    kernels used here are deterministic already (the resume tests check bit-identity), and the
    switch costs every process a multi-second import (torch._inductor), so it is only set when
    training on CUDA."""
    torch.backends.cudnn.benchmark = not enabled
    if device.type == "cuda":
        if enabled:  # cuBLAS needs a fixed workspace for deterministic matmuls
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(enabled, warn_only=True)


def resolve_device(name: str) -> torch.device:
    """`auto` -> cuda when available, else cpu; `cpu`, `cuda`, `cuda:N` as given."""
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", name):
        raise ConfigError(f"device={name!r} is not one of auto, cpu, cuda, cuda:N", "--device")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r} requested but CUDA is not available",
                          "use --device auto or cpu")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ConfigError(f"device={name!r}: only {torch.cuda.device_count()} CUDA device(s)",
                          "--device")
    return device


def make_run_dir(out_dir: str, config_name: str) -> Path:
    """`out_dir` when given, else runs/<config_name>/<YYYYmmdd-HHMMSS>/ (with its ckpt/)."""
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


def rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    """The generators training noise comes from: the CPU one and, on CUDA, that device's."""
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, torch.Tensor], device: torch.device) -> None:
    """Restore what `rng_state` captured (the CUDA part only when both sides have one)."""
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def cuda_rng_devices() -> list[int]:
    """CUDA devices whose generators this process may have used (for `torch.random.fork_rng`);
    empty without CUDA or before CUDA is initialised."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return list(range(torch.cuda.device_count()))
    return []


def save_checkpoint(path: str | Path, **state: Any) -> None:
    """Write `state` crash-safely: <name>.tmp, fsync, then the old `path` becomes
    <stem>.prev<suffix> and the tmp file becomes `path`. At every instant a complete checkpoint
    exists (path, or path.prev while the new one is moved in)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save({"format_version": FORMAT_VERSION, **state}, f)
        f.flush()
        os.fsync(f.fileno())
    if path.exists():
        os.replace(path, prev_path(path))
    os.replace(tmp, path)


def prev_path(path: str | Path) -> Path:
    """ckpt/last.pt -> ckpt/last.prev.pt."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def _reason(err: BaseException) -> str:
    """A short reason written from the exception type (never torch's advice text)."""
    if isinstance(err, pickle.UnpicklingError):
        return "it holds objects that safe loading refuses"
    if isinstance(err, (EOFError, zipfile.BadZipFile)):
        return "truncated or corrupt file"
    if isinstance(err, RuntimeError):
        return "truncated or corrupt torch archive"
    if isinstance(err, IsADirectoryError):
        return "a folder, not a file"
    if isinstance(err, PermissionError):
        return "no permission to read it"
    return f"unreadable ({type(err).__name__})"


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by `save_checkpoint` (weights_only, on CPU); CheckpointError if
    it is missing, unreadable, of another format version, or lacks the expected keys."""
    path = Path(path)
    if not path.exists():
        raise CheckpointNotFoundError(f"checkpoint not found: {path}",
                              "train.py writes <out_dir>/ckpt/last.pt; check --ckpt")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as err:
        raise CheckpointError(f"not a readable checkpoint of {SUBPROJECT}: {path}",
                              _reason(err)) from None
    if magic != b"PK\x03\x04":  # torch.save writes a zip archive
        raise CheckpointError(f"not a readable checkpoint of {SUBPROJECT}: {path}",
                              "not a torch checkpoint file: no zip archive header")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated file, corrupt archive, disallowed globals
        raise CheckpointError(f"not a readable checkpoint of {SUBPROJECT}: {path}",
                              _reason(err)) from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"not a readable checkpoint of {SUBPROJECT}: {path}",
                              f"holds a {type(ckpt).__name__}, not a checkpoint dict")
    if ckpt.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"not a readable checkpoint of {SUBPROJECT}: {path}",
                              f"format_version {ckpt.get('format_version')!r}, "
                              f"this code reads {FORMAT_VERSION}")
    missing = [k for k in CKPT_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"not a readable checkpoint of {SUBPROJECT}: {path}",
                              f"missing keys {missing}")
    return ckpt


def resume_checkpoint(ckpt_dir: str | Path) -> dict[str, Any] | None:
    """The newest readable of ckpt_dir/last.pt and last.prev.pt; None when neither exists.
    Falls back to last.prev.pt with a one-line warning; CheckpointError if both are unreadable."""
    last = Path(ckpt_dir) / "last.pt"
    prev = prev_path(last)
    if not last.exists() and not prev.exists():
        return None
    try:
        return load_checkpoint(last)
    except CheckpointError as err:
        if not prev.exists():
            raise
        first = err
    try:
        ckpt = load_checkpoint(prev)
    except CheckpointError as err:
        raise CheckpointError(f"neither {last} nor {prev} is a readable checkpoint",
                              f"{first.where}; {err.where}; remove them to start afresh") from None
    why = first.where if last.exists() else "missing"
    print(f"warning: {last} is not readable ({why}); resuming from {prev} (step {ckpt['step']})",
          file=sys.stderr)
    return ckpt


class MetricsLogger:
    """Appends one JSON object per call to run_dir/metrics.jsonl; mirrors to wandb if enabled."""

    def __init__(self, run_dir: str | Path, wandb: bool = False, config: dict | None = None,
                 project: str = "rl-hvae") -> None:
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
        """Record `metrics` at `step`; `progress` is an optional tqdm bar to update."""
        record = {"step": int(step), "split": split, **{k: float(v) for k, v in metrics.items()}}
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if progress is not None:
            shown = dict(list(metrics.items())[:4])  # keep the bar on one line
            progress.set_postfix({k: f"{v:.4g}" for k, v in shown.items()}, refresh=False)
        if self._wandb is not None:
            self._wandb.log({f"{split}/{k}": v for k, v in metrics.items()}, step=int(step))

    def close(self) -> None:
        if self._wandb is not None:
            self._wandb.finish()


def read_metrics(run_dir: str | Path) -> list[dict]:
    """All records of run_dir/metrics.jsonl."""
    with (Path(run_dir) / "metrics.jsonl").open() as f:
        return [json.loads(line) for line in f if line.strip()]

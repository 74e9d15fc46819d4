"""Run-time helpers: user errors and the CLI wrapper, seeding, device, checkpoints that survive
a crash (write-then-rotate, fallback to the previous one), metrics logging."""

from __future__ import annotations

import json
import os
import pickle
import random
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT_VERSION = 1
SUBPROJECT = "vl2v-adip"


class UserError(Exception):
    """A mistake in what the user gave (config, data, checkpoint, output folder). The CLI prints
    it as one line `error: <what> (<where to look>)` and exits with status 2."""

    def __init__(self, what: str, where: str = "") -> None:
        self.what, self.where = " ".join(str(what).split()), " ".join(str(where).split())
        super().__init__(f"{self.what} ({self.where})" if self.where else self.what)


class ConfigError(UserError, ValueError):
    """Unknown config key or a value of the wrong type / outside the allowed set."""


class MissingPathError(UserError, FileNotFoundError):
    """A file or folder the user named does not exist."""


class DataError(UserError, ValueError):
    """A dataset folder or file that does not have the expected layout or content."""


class CheckpointError(UserError, ValueError):
    """A checkpoint (or weights file) that cannot be read or does not fit the config."""


def cli(main, argv: list[str] | None = None) -> None:
    """Run `main(argv)`; a UserError becomes one stderr line and exit status 2 (`--debug`: the
    traceback instead). Other exceptions propagate unchanged."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    rest = [a for a in argv if a != "--debug"]
    try:
        main(rest)
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
        raise UserError(f"output folder is not writable: {path} ({type(err).__name__})",
                        "set --out_dir to a folder you can write") from err
    return path


def prev_path(path: str | Path) -> Path:
    """ckpt/last.pt -> ckpt/last.prev.pt"""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def save_checkpoint(path: str | Path, **state: Any) -> None:
    """Write `state` (plain types and state dicts) so that a complete checkpoint exists at every
    instant: `<name>.tmp` written and fsynced, the old file renamed to `<stem>.prev<suffix>`,
    then the temporary file renamed to `path`."""
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


_READ_ERRORS = {  # exception type -> short reason written by us (never torch's own advice)
    pickle.UnpicklingError: "not a PyTorch checkpoint, or one holding objects other than "
                            "tensors and plain types",
    zipfile.BadZipFile: "damaged or truncated file",
    EOFError: "truncated file",
    UnicodeDecodeError: "not a PyTorch checkpoint",
    RuntimeError: "damaged or truncated file",
    OSError: "cannot be read",
}


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by `save_checkpoint` (weights_only, on CPU).

    Raises:
        CheckpointError: missing, unreadable (text, truncated, foreign pickle) or not ours.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}",
                              "expected <run>/ckpt/last.pt written by train.py")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - every failure of an untrusted file is reported
        reason = next((r for t, r in _READ_ERRORS.items() if isinstance(err, t)),
                      f"unreadable ({type(err).__name__})")
        raise CheckpointError(f"not a readable checkpoint of {SUBPROJECT}: {path} ({reason})",
                              "use <run>/ckpt/last.pt or last.prev.pt of a train.py run") \
            from None
    if not isinstance(ckpt, dict) or ckpt.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"not a readable checkpoint of {SUBPROJECT}: {path} "
                              f"(no format_version {FORMAT_VERSION})",
                              "use <run>/ckpt/last.pt of a train.py run")
    kinds = {"step": int, "config": dict, "meta": dict}
    wrong = [k for k, t in kinds.items() if not isinstance(ckpt.get(k), t)]
    if wrong:
        raise CheckpointError(f"not a readable checkpoint of {SUBPROJECT}: {path} "
                              f"(missing or malformed keys {wrong})", "use <run>/ckpt/last.pt")
    return ckpt


def resume_checkpoint(ckpt_dir: str | Path) -> dict[str, Any] | None:
    """The newest readable checkpoint of a run: `last.pt`, else `last.prev.pt` (with a warning
    line on stderr), else None (fresh start) when neither exists.

    Raises:
        CheckpointError: both files exist (or one exists) and none is readable.
    """
    last = Path(ckpt_dir) / "last.pt"
    prev = prev_path(last)
    if not last.exists() and not prev.exists():
        return None
    try:
        return load_checkpoint(last)
    except CheckpointError as err:
        first = err
    if not prev.exists():
        raise first
    try:
        ckpt = load_checkpoint(prev)
    except CheckpointError:
        raise CheckpointError(f"neither {last} nor {prev} is a readable checkpoint",
                              "delete the ckpt folder to start afresh") from None
    reason = "missing" if not last.exists() else first.what.rsplit("(", 1)[-1].rstrip(")")
    print(f"warning: {last} is not readable ({reason}); resuming from {prev} "
          f"(step {ckpt['step']})", file=sys.stderr)
    return ckpt


def rng_state() -> dict[str, Any]:
    """CPU (and, when initialised, CUDA) generator states for the checkpoint."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any] | None) -> None:
    if not state:
        return
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"][: torch.cuda.device_count()])


class MetricsLogger:
    """Appends one JSON object per call to run_dir/metrics.jsonl; mirrors to wandb if enabled."""

    def __init__(self, run_dir: str | Path, wandb: bool = False, config: dict | None = None,
                 project: str = "vl2v-adip") -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._wandb = None
        if wandb:
            try:
                import wandb as wandb_lib
            except ImportError as err:
                raise UserError("wandb=true needs the wandb package",
                                "pip install -e '.[wandb]'") from err
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

"""Run-time helpers: user errors and the CLI wrapper, seeding, device, checkpoints (safe reading,
rotation with a previous copy, resume fallback), metrics logging."""

from __future__ import annotations

import json
import os
import pickle
import random
import sys
import time
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

FORMAT_VERSION = 2
SUBPROJECT = "eye-radiance"


class UserError(Exception):
    """A mistake in what the user gave (config, data, checkpoint, output folder)."""

    def __init__(self, what: str, where: str = "") -> None:
        self.what, self.where = " ".join(str(what).split()), " ".join(str(where).split())
        super().__init__(f"{self.what} ({self.where})" if self.where else self.what)


class ConfigError(UserError, ValueError):
    pass


class MissingPathError(UserError, FileNotFoundError):
    pass


class CheckpointError(UserError, ValueError):
    pass


class DataError(UserError, ValueError):
    pass


def cli(main: Callable[[list[str]], Any], argv: list[str] | None = None) -> None:
    """Run main(argv) as a command: a UserError prints `error: ...` on one line and exits 2;
    `--debug` lets it propagate with its traceback. Other exceptions propagate unchanged."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    rest = [a for a in args if a != "--debug"]
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
        raise ConfigError(f"device={name!r} is not a device", "auto, cpu, cuda or cuda:N") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r} requested but CUDA is not available", "use auto or cpu")
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
        raise UserError(f"cannot write to output folder {path}: {type(err).__name__}",
                        "out_dir") from err
    return path


def rng_state() -> dict[str, Any]:
    """Global RNG states: python, numpy, torch CPU and, when CUDA is initialised, every GPU."""
    state = {
        "python": torch.tensor(random.getstate()[1], dtype=torch.int64),
        "python_gauss": random.getstate()[2],
        "numpy": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
        "numpy_pos": int(np.random.get_state()[2]),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Inverse of rng_state (CUDA states are restored when present and CUDA is available)."""
    random.setstate((3, tuple(int(v) for v in state["python"]), state["python_gauss"]))
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32),
                         state["numpy_pos"], 0, 0.0))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def prev_path(path: Path) -> Path:
    """ckpt/last.pt -> ckpt/last.prev.pt."""
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def plain(obj: Any) -> Any:
    """Numpy scalars (nerfstudio's schedulers put np.float64 learning rates into the optimizer
    and scheduler states) -> Python numbers, recursively, so weights_only loading accepts them."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(plain(v) for v in obj)
    return obj


def save_checkpoint(path: str | Path, **state: Any) -> None:
    """Write `state` to <path>.tmp, fsync, keep the old file as <stem>.prev<suffix>, then move
    the new one in place: at every instant at least one complete checkpoint exists."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(plain({"format_version": FORMAT_VERSION, **state}), f)
        f.flush()
        os.fsync(f.fileno())
    if path.exists():
        os.replace(path, prev_path(path))
    os.replace(tmp, path)


_REASONS = {
    pickle.UnpicklingError: "not a torch checkpoint, or it holds objects that are not plain data",
    zipfile.BadZipFile: "truncated or corrupt file",
    EOFError: "truncated file",
    UnicodeDecodeError: "not a torch checkpoint",
}


def _reason(err: BaseException) -> str:
    for kind, text in _REASONS.items():
        if isinstance(err, kind):
            return text
    if isinstance(err, RuntimeError):
        return "truncated or corrupt file"
    return f"unreadable ({type(err).__name__})"


REQUIRED_KEYS = ("step", "config", "model")


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by `save_checkpoint` (weights_only, on CPU) or raise
    CheckpointError with a short reason (never torch's advice to weaken safe loading)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}", "--ckpt <run>/ckpt/last.pt")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure means the file is not usable
        raise CheckpointError(
            f"not a readable checkpoint of {SUBPROJECT}: {path}", _reason(err)
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"not a readable checkpoint of {SUBPROJECT}: {path}",
            f"format_version is not {FORMAT_VERSION}",
        )
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(
            f"not a readable checkpoint of {SUBPROJECT}: {path}", f"missing keys {missing}"
        )
    return ckpt


def resume_checkpoint(ckpt_dir: str | Path) -> dict[str, Any] | None:
    """last.pt, else last.prev.pt with a one-line warning; None when neither exists."""
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
    ckpt = load_checkpoint(prev)  # raises when both are unreadable
    reason = first.where or "missing"
    print(f"warning: {last} is not readable ({reason}); resuming from {prev} "
          f"(step {ckpt['step']})", file=sys.stderr)
    return ckpt


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

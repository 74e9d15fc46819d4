"""Run-time helpers: user errors and the CLI wrapper, seeding, device and process group, safe
checkpoints (atomic write with one previous copy kept, safe read, resume with fallback), metrics
logging. Interface shared with the other subprojects (notes/CONTRACT-23-24.md): `UserError`,
`cli`, `save_checkpoint`, `load_checkpoint`, `resume_checkpoint`, `init_distributed`.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import sys
import time
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

# 2: the box head holds pairs in the official [face, body] layout (model.py); a version-1
# checkpoint's head means [body, face] and is refused rather than silently swapped
FORMAT_VERSION = 2
SUBPROJECT = "pairdetr"
CKPT_KEYS = ("step", "config", "model")  # keys every checkpoint of this code holds


# ------------------------------------------------------------------ user errors


class UserError(Exception):
    """A mistake in what the user gave (config, dataset, checkpoint, output folder).

    `str(err)` is one line, "<what> (<where to look>)"; `cli` prints it as `error: ...`.
    """

    def __init__(self, what: str, where: str = ""):
        self.what, self.where = what, where
        text = f"{what} ({where})" if where else what
        self.message = " ".join(text.split())  # one line, whatever the parts held
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class ConfigError(UserError, ValueError):
    """Unknown config key, wrong type or out-of-range value."""


class MissingPathError(UserError, FileNotFoundError):
    """A file or folder the user named does not exist."""


class CheckpointError(UserError, ValueError):
    """A checkpoint that cannot be read, or that belongs to another program or config."""


class DataError(UserError, ValueError):
    """A dataset file that exists but is malformed."""


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


# ------------------------------------------------------------------ seeding, device, processes


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
        raise ConfigError(f"device={name!r} is not a device name", "use auto, cpu, cuda or "
                          "cuda:N") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r} requested but CUDA is not available",
                          "use device auto or cpu")
    return device


def init_distributed(device_name: str) -> tuple[int, int, torch.device]:
    """(rank, world size, device). Under torchrun (WORLD_SIZE > 1) joins the process group and
    uses cuda:(LOCAL_RANK mod #GPUs); otherwise a single process.

    Backend: env DIST_BACKEND when set, else nccl on CUDA and gloo on CPU. NCCL refuses two ranks
    on one GPU, so a one-GPU check runs `DIST_BACKEND=gloo` with CUDA tensors.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, resolve_device(device_name)
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_name != "cpu"
    backend = os.environ.get("DIST_BACKEND") or ("nccl" if use_cuda else "gloo")
    device = torch.device("cpu")
    if use_cuda:
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return dist.get_rank(), world, device


def make_run_dir(out_dir: str, config_name: str) -> Path:
    """`out_dir` when given, else runs/<config_name>/<YYYYmmdd-HHMMSS>/ (with ckpt/)."""
    path = Path(out_dir) if out_dir else Path("runs") / config_name / time.strftime("%Y%m%d-%H%M%S")
    try:
        (path / "ckpt").mkdir(parents=True, exist_ok=True)
        probe = path / f".write_test-{os.getpid()}"  # per process: DDP ranks share the folder
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise UserError(f"cannot write the run folder {path}: {type(err).__name__}",
                        "set out_dir to a writable folder") from err
    return path


# ------------------------------------------------------------------ checkpoints


def previous_path(path: str | Path) -> Path:
    """ckpt/last.pt -> ckpt/last.prev.pt (the copy kept while a new one is written)."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def save_checkpoint(path: str | Path, **state: Any) -> None:
    """Write `state` so that a complete checkpoint exists at every instant.

    Writes <path>.tmp, flushes and fsyncs it, moves an existing <path> to <stem>.prev<suffix>,
    then moves the new file into place (os.replace is atomic on one filesystem).
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


def _read_reason(err: BaseException) -> str:
    """A short reason written here from the exception type (torch's own text about
    weights_only=False is never passed on: a file of unknown origin must stay refused)."""
    if isinstance(err, pickle.UnpicklingError):
        return "not a PyTorch checkpoint, or it holds objects that safe loading refuses"
    if isinstance(err, (EOFError, zipfile.BadZipFile)):
        return "file is empty or truncated"
    if isinstance(err, RuntimeError):
        return "file is truncated or corrupt"
    if isinstance(err, (KeyError, UnicodeDecodeError, ValueError, TypeError, AttributeError)):
        return "not a PyTorch checkpoint"
    if isinstance(err, OSError):
        return f"cannot be read ({type(err).__name__})"
    return f"cannot be unpickled ({type(err).__name__})"


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint` (weights_only, on CPU).

    Raises MissingPathError when there is no file and CheckpointError for anything unreadable
    or foreign (not a dict, wrong format_version, written by another program, missing keys).
    """
    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"checkpoint not found: {path}",
                               "give the path of a ckpt/last.pt written by train.py")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - every failure of a foreign file is the user's
        raise _unreadable(path, _read_reason(err)) from None
    if not isinstance(ckpt, dict):
        raise _unreadable(path, f"holds a {type(ckpt).__name__}, not a checkpoint dict")
    if ckpt.get("format_version") != FORMAT_VERSION:
        raise _unreadable(path, f"format_version {ckpt.get('format_version')!r}, "
                                f"expected {FORMAT_VERSION}")
    if ckpt.get("kind") != SUBPROJECT:
        raise _unreadable(path, f"written by another program (kind={ckpt.get('kind')!r})")
    missing = [k for k in CKPT_KEYS if k not in ckpt]
    if missing:
        raise _unreadable(path, f"missing keys {missing}")
    return ckpt


def read_weights_file(path: str | Path, what: str) -> Any:
    """A plain state_dict file (backbone or official weights) read with weights_only=True."""
    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"{what} not found: {path}", f"set {what} to an existing .pth file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - a foreign file's failure is the user's
        raise CheckpointError(f"not a readable weights file for {what}: {path}",
                              _read_reason(err)) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"not a readable weights file for {what}: {path}",
                              f"holds a {type(state).__name__}, not a state_dict")
    return state


def resume_checkpoint(ckpt_dir: str | Path) -> dict[str, Any] | None:
    """The newest readable checkpoint of a run: ckpt/last.pt, else ckpt/last.prev.pt.

    Falling back prints one warning line to stderr. Neither file: None (fresh start).
    Both present but unreadable (or only an unreadable one): CheckpointError.
    """
    last = Path(ckpt_dir) / "last.pt"
    prev = previous_path(last)
    if not last.exists() and not prev.exists():
        return None
    try:
        return load_checkpoint(last)
    except UserError as err:
        if not prev.exists():
            raise
        reason = err.where if isinstance(err, CheckpointError) else "missing"
    ckpt = load_checkpoint(prev)
    print(f"warning: {last} is not readable ({reason}); resuming from {prev} "
          f"(step {int(ckpt['step'])})", file=sys.stderr, flush=True)
    return ckpt


def cuda_rng_states() -> list[torch.Tensor] | None:
    """CUDA generator states of all devices when CUDA is initialised (dropout noise on GPU)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return torch.cuda.get_rng_state_all()
    return None


def restore_rng(torch_state: torch.Tensor | None, cuda_states: list | None) -> None:
    """Restore the CPU and (when saved and the device count matches) the CUDA generators."""
    if torch_state is not None:
        torch.set_rng_state(torch_state)
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)


# ------------------------------------------------------------------ metrics logging


class MetricsLogger:
    """Appends one JSON object per call to run_dir/metrics.jsonl; mirrors to wandb if enabled."""

    def __init__(self, run_dir: str | Path, wandb: bool = False, config: dict | None = None,
                 project: str = "pairdetr") -> None:
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

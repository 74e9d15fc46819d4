"""Paper-preset smoke run (issue 24): configs/paper.toml at the paper's sizes (28x28 images, 64
channels, 5 levels), 2 updates, resume for 1 more, evaluate on a small split.

    python smoke.py [--device auto|cpu|cuda] [--batch_size N] [--out runs/smoke]
The data are scikit-learn's digits resized to 28x28 and written as FashionMNIST IDX files, so
the real loader reads them; only data source, step count, evaluation size, device and (if
given) batch size differ from the preset. Writes <out>/smoke.json and prints one line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PAPER = HERE / "configs" / "paper.toml"


def write_idx_dataset(folder: Path, n_train: int = 512, n_test: int = 256, size: int = 28) -> None:
    """Digits resized to size x size, as uint8 IDX files in FashionMNIST's names."""
    import torch
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0  # [N, 1, 8, 8]
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear")[:, 0]
    images = (x.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    labels = digits.target.astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    splits = {"train": slice(0, n_train), "t10k": slice(n_train, n_train + n_test)}
    for prefix, part in splits.items():
        for kind, arr in (("images-idx3", images[part]), ("labels-idx1", labels[part])):
            head = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big")
                                                         for d in arr.shape)
            (folder / f"{prefix}-{kind}-ubyte").write_bytes(head + arr.tobytes())


def run_phase(cmd: list[str], log: Path) -> tuple[float, float]:
    """Run one child process; returns (wall seconds, its peak RSS in MiB). Raises on failure."""
    start = time.perf_counter()
    with log.open("w") as f:
        proc = subprocess.Popen(cmd, cwd=HERE, stdout=f, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        tail = log.read_text()[-600:].strip().splitlines()
        raise RuntimeError(f"{cmd[1]} exited {proc.returncode}: {tail[-1] if tail else ''} "
                           f"(log: {log})")
    return seconds, usage.ru_maxrss / 1024  # ru_maxrss is KiB on Linux


def smoke(out: Path, device: str, batch_size: int | None) -> dict:
    from rl_hvae.config import load_config

    paper = load_config(PAPER)
    if out.exists():
        shutil.rmtree(out)
    data = out / "data"
    write_idx_dataset(data)
    run = out / "run"
    py = sys.executable
    common = ["--config", str(PAPER), "--data_name", "fashion_mnist", "--data_root", str(data),
              "--out_dir", str(run), "--device", device]
    if batch_size:
        common += ["--batch_size", str(batch_size)]
    result = {"subproject": "rl-hvae", "device": device, "ok": False,
              "batch_size": batch_size or paper.batch_size, "paper_batch_size": paper.batch_size}
    t0 = time.perf_counter()
    train_s, rss1 = run_phase([py, "train.py", *common, "--steps", "2"], out / "train.log")
    resume_s, rss2 = run_phase([py, "train.py", *common, "--steps", "3"], out / "resume.log")
    if "resuming from" not in (out / "resume.log").read_text() or \
            "at step 2" not in (out / "resume.log").read_text():
        raise RuntimeError(f"the second run did not resume at step 2 (log: {out / 'resume.log'})")
    eval_s, rss3 = run_phase([py, "eval.py", "--ckpt", str(run / "ckpt" / "last.pt"),
                              "--max_examples", "64", "--iw_samples", "10", "--device", device],
                             out / "eval.log")
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    mem = [r["cuda_max_mem_mib"] for r in records if "cuda_max_mem_mib" in r]
    result.update(ok=True, train_s=round(train_s, 1), resume_s=round(resume_s, 1),
                  eval_s=round(eval_s, 1), wall_s=round(time.perf_counter() - t0, 1),
                  peak_rss_mib=round(max(rss1, rss2, rss3)), cuda_max_mem_mib=(
                      round(max(mem)) if mem else None),
                  note="digits resized to 28x28 as FashionMNIST IDX (512 train / 256 test); "
                       "eval on 64 test images, k = 10")
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--batch_size", type=int, default=None, help="default: the preset's")
    parser.add_argument("--out", default="runs/smoke")
    args = parser.parse_args(argv)
    out = Path(args.out)
    device = args.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        result = smoke(out, device, args.batch_size)
    except Exception as err:  # record the failure, then exit non-zero
        result = {"subproject": "rl-hvae", "device": device, "ok": False,
                  "error": f"{type(err).__name__}: {err}"}
        out.mkdir(parents=True, exist_ok=True)
        (out / "smoke.json").write_text(json.dumps(result, indent=2))
        print(f"smoke rl-hvae FAILED: {result['error']}", file=sys.stderr)
        raise SystemExit(1) from None
    (out / "smoke.json").write_text(json.dumps(result, indent=2))
    print(f"smoke rl-hvae ok: device {device}, batch {result['batch_size']} "
          f"(paper {result['paper_batch_size']}), train {result['train_s']} s, resume "
          f"{result['resume_s']} s, eval {result['eval_s']} s, wall {result['wall_s']} s, "
          f"peak RSS {result['peak_rss_mib']} MiB, CUDA max {result['cuda_max_mem_mib']} MiB")
    return result


if __name__ == "__main__":
    from rl_hvae.runtime import cli

    cli(main)

"""Paper-preset smoke run (issue 24): configs/paper.toml at the paper's sizes on synthetic data.

Trains 2 steps (ResNet-50, 1,500 queries, 6+6 layers, multi-scale 480..800 / max 1400, batch 1
per GPU as in the paper), resumes for 1 more step, evaluates 2 validation images, and writes
<out>/smoke.json with wall times, the peak RSS of each child process and, on CUDA, the largest
`cuda_max_mem_mib` the engine logged. Only dataset-source keys, the step count, the evaluation
size, the device and (when asked) the batch size differ from the paper preset.

  python smoke.py [--device auto|cpu|cuda] [--batch_size N] [--out runs/smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from pairdetr.config import load_config

ROOT = Path(__file__).resolve().parent
# dataset source (synthetic crowd at the paper's image sizes, small in count) and eval size
DATA = ["--data_name", "synthetic", "--data_num_train", "4", "--data_num_val", "2"]
EVAL = ["--eval_max_images", "2"]


def _run(cmd: list[str], log: Path) -> tuple[float, float, str]:
    """(seconds, peak RSS MiB of the child, its output); raises RuntimeError on failure."""
    start = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds, text = time.perf_counter() - start, log.read_text()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd[1:3])} exited with {code}: {text[-1500:]}")
    return seconds, usage.ru_maxrss / 1024, text  # ru_maxrss is KiB on Linux


def train_args(device: str, batch: int, run: Path) -> list[str]:
    """train.py arguments of the smoke run (the step count is appended per phase)."""
    return ["--config", "configs/paper.toml", *DATA, *EVAL, "--device", device,
            "--batch_size", str(batch), "--out_dir", str(run)]


def fresh_run(run: Path) -> None:
    """A fresh run folder, not the resume of an earlier smoke: its checkpoints and its
    metrics.jsonl (appended to, and read back for cuda_max_mem_mib) are removed."""
    (run / "ckpt").mkdir(parents=True, exist_ok=True)
    for old in [*(run / "ckpt").glob("last*.pt"), run / "metrics.jsonl"]:
        old.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--batch_size", type=int, default=0, help="0 = the paper's")
    parser.add_argument("--out", default=str(ROOT / "runs" / "smoke"))
    args = parser.parse_args(argv)
    paper = load_config(ROOT / "configs" / "paper.toml")
    batch = args.batch_size or paper.batch_size
    out = Path(args.out).resolve()
    run = out / "run"
    out.mkdir(parents=True, exist_ok=True)
    fresh_run(run)
    import torch

    device = "cuda" if args.device == "cuda" or (args.device == "auto"
                                                 and torch.cuda.is_available()) else "cpu"
    train = [sys.executable, "train.py", *train_args(device, batch, run)]
    result = {"subproject": "pairdetr", "device": device, "ok": False, "train_s": None,
              "resume_s": None, "eval_s": None, "wall_s": None, "peak_rss_mib": None,
              "cuda_max_mem_mib": None, "batch_size": batch,
              "paper_batch_size": paper.batch_size, "note": ""}
    start = time.perf_counter()
    try:
        result["train_s"], rss1, _ = _run(train + ["--steps", "2"], out / "train.log")
        result["resume_s"], rss2, text = _run(train + ["--steps", "3"], out / "resume.log")
        if "at step 2" not in text:
            raise RuntimeError("the second run did not resume at step 2")
        result["eval_s"], rss3, _ = _run([sys.executable, "eval.py", "--ckpt",
                                          str(run / "ckpt" / "last.pt"), *EVAL, "--device",
                                          device], out / "eval.log")
        result["peak_rss_mib"] = max(rss1, rss2, rss3)
        mems = [r["cuda_max_mem_mib"] for r in map(json.loads, (run / "metrics.jsonl").open())
                if "cuda_max_mem_mib" in r]
        result["cuda_max_mem_mib"] = max(mems) if mems else None
        result["ok"] = True
        result["note"] = ("paper batch size" if batch == paper.batch_size else
                          f"batch {batch} instead of the paper's {paper.batch_size}")
    except (RuntimeError, OSError) as err:
        result["note"] = str(err)[-2000:]
    result["wall_s"] = round(time.perf_counter() - start, 1)
    (out / "smoke.json").write_text(json.dumps(result, indent=2))
    print(f"pairdetr smoke {'ok' if result['ok'] else 'FAILED'}: device {device}, wall "
          f"{result['wall_s']} s (train {result['train_s'] and round(result['train_s'], 1)}, "
          f"resume {result['resume_s'] and round(result['resume_s'], 1)}, eval "
          f"{result['eval_s'] and round(result['eval_s'], 1)}), peak RSS "
          f"{result['peak_rss_mib'] and round(result['peak_rss_mib'])} MiB, cuda "
          f"{result['cuda_max_mem_mib'] and round(result['cuda_max_mem_mib'])} MiB, batch "
          f"{batch}/{paper.batch_size}" + ("" if result["ok"] else f"\n{result['note']}"))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

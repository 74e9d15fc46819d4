"""`make smoke-ccdae-similarity`: the paper preset at the paper's sizes, run for real.

Trains with configs/paper.toml for 2 optimiser steps, resumes for 1 more, then evaluates on a
small split, each through the real CLIs (train.py / eval.py as subprocesses). Only the step count,
the checkpoint cadence, the evaluation size and the device are overridden (the procedural world
is the data source at the preset's image size); every model, loss and scoring setting is the
paper preset's. Writes <out>/smoke.json with wall times and peak memory.

    python smoke.py [--device auto|cpu|cuda] [--batch_size N] [--out runs/smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent
PAPER = ROOT / "configs" / "paper.toml"
# Scoring one pair at the paper's settings (8 descriptions per budget, 50 ELBO timesteps, both
# likelihood routes, both modalities) already takes minutes on a CPU.
EVAL_SMALL = ["--eval_max_pairs", "1"]


def _child(cmd: list[str]) -> tuple[float, float, str]:
    """Run one CLI; (seconds, its peak RSS in MiB, its output). Raises on failure."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[1:3])} exited {proc.returncode}:\n{out[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, out  # ru_maxrss is KiB on Linux


def _cuda_peak(run: Path) -> float | None:
    path = run / "metrics.jsonl"
    values = [json.loads(line).get("cuda_max_mem_mib") for line in path.read_text().splitlines()
              if line.strip()] if path.is_file() else []
    values = [v for v in values if v is not None]
    return max(values) if values else None


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch_size", type=int, default=0, help="0 = the paper preset's")
    parser.add_argument("--out", default="runs/smoke")
    args = parser.parse_args(argv)
    paper = tomllib.loads(PAPER.read_text())
    out = (ROOT / args.out).resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    run = out / "run"
    common = [sys.executable, "train.py", "--config", str(PAPER), "--out_dir", str(run),
              "--device", args.device, "--save_every", "2", "--log_every", "1"]
    if args.batch_size:
        common += ["--batch_size", str(args.batch_size)]
    record = {"subproject": "ccdae-similarity", "device": args.device, "ok": False,
              "batch_size": args.batch_size or paper["batch_size"],
              "paper_batch_size": paper["batch_size"], "note": "procedural world at image_size "
              f"{paper['image_size']}; eval: 1 world pair per modality"}
    try:
        train_s, rss_train, _ = _child(common + ["--steps", "2"])
        resume_s, rss_resume, log = _child(common + ["--steps", "3"])
        if "resumed from" not in log or "at step 2" not in log:
            raise RuntimeError(f"the second run did not resume at step 2:\n{log[-2000:]}")
        eval_s, rss_eval, _ = _child([sys.executable, "eval.py", "--ckpt",
                                      str(run / "ckpt" / "last.pt"), "--device", args.device,
                                      *EVAL_SMALL])
        record.update(ok=True, train_s=round(train_s, 1), resume_s=round(resume_s, 1),
                      eval_s=round(eval_s, 1), wall_s=round(train_s + resume_s + eval_s, 1),
                      peak_rss_mib=round(max(rss_train, rss_resume, rss_eval)),
                      cuda_max_mem_mib=_cuda_peak(run))
        if record["cuda_max_mem_mib"] is not None:
            record["device"] = "cuda"
        elif args.device == "auto":
            record["device"] = "cpu"
    except RuntimeError as err:
        record["error"] = str(err)
        print(err, file=sys.stderr)
    (out / "smoke.json").write_text(json.dumps(record, indent=2))
    print("smoke:", json.dumps({k: v for k, v in record.items() if k != "error"}))
    if not record["ok"]:
        raise SystemExit(1)
    return record


if __name__ == "__main__":
    main()

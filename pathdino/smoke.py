"""`make smoke-pathdino`: the paper preset at the paper's sizes, run for real.

Writes pretraining images in the official TCGA layout (4 at 1024 px, which take the official
1024 px HistoRotate path, and 4 at 512 px) and two Aperio-layout slides scanned at 5x (so the
paper's 1000 px-at-20x FPS patches are 250 px there), then trains with configs/paper.toml
(512 px global crops, 8 local crops at 224 px, 5-block ViT, K = 65,536) for 2 optimiser steps,
resumes for 1 more and evaluates, through the real CLIs. Only the data source, the step count,
the checkpoint/log cadence, the evaluation size, the device and the batch size are overridden.
Writes <out>/smoke.json with wall times and peak memory.

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
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent
PAPER = ROOT / "configs" / "paper.toml"
# CPU: measured 2.8 GB at batch 2 and 3.9 GB at batch 4 (one train step, paper sizes), i.e.
# ~0.53 GB per image: the paper's 64 would need ~36 GB on a 24 GiB machine; 8 fits (~6 GB) and
# keeps three steps near 10 minutes on 2 cores
CPU_BATCH = 8
EVAL = {"data_num_eval_per_class": 2, "eval_rotation_patches": 4, "eval_rotation_angles": 4}


def _child(cmd: list[str]) -> tuple[float, float, str]:
    """Run one CLI; (seconds, its peak RSS in MiB, its output). Raises on failure."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=dict(os.environ, PYTHONUNBUFFERED="1",
                                                TQDM_DISABLE="1"))
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd[1:3])} exited {code}:\n{out[-3000:]}")
    return time.perf_counter() - start, usage.ru_maxrss / 1024, out  # ru_maxrss: KiB


def _cuda_peak(run: Path) -> float | None:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    values = [json.loads(x).get("cuda_max_mem_mib") for x in lines if x.strip()]
    values = [v for v in values if v is not None]
    return max(values) if values else None


def main(argv: list[str] | None = None) -> dict:
    from pathdino.runtime import resolve_device
    from pathdino.synthetic import write_pretraining_folder, write_synthetic_slides

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--batch_size", type=int, default=0, help="0: paper's (CPU: 8)")
    parser.add_argument("--out", default="runs/smoke")
    args = parser.parse_args(argv)
    paper = tomllib.loads(PAPER.read_text())
    device = resolve_device(args.device).type
    out, run = (ROOT / args.out).resolve(), (ROOT / args.out).resolve() / "run"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    batch = args.batch_size or (paper["batch_size"] if device == "cuda" else CPU_BATCH)
    note = "synthetic TCGA-layout images (4 at 1024 px, 4 at 512 px), 2 synthetic 5x SVS slides"
    if batch < paper["batch_size"]:
        note += (f"; batch {batch} instead of {paper['batch_size']}"
                 + (": on CPU the paper batch needs ~36 GB (measured ~0.53 GB per image)"
                    if device == "cpu" else " (asked)"))
    record = {"subproject": "pathdino", "device": device, "ok": False, "batch_size": batch,
              "paper_batch_size": paper["batch_size"], "note": note}
    try:
        t0 = time.perf_counter()
        data = write_pretraining_folder(out / "TCGA", 4, seed=0)
        slides = write_synthetic_slides(out / "slides", 2, 2, 1536, 1, 20.0, seed=1, levels=3,
                                        objective_power=5, aperio=True)
        record["prep_s"] = round(time.perf_counter() - t0, 1)
        common = [sys.executable, "train.py", "--config", str(PAPER), "--out_dir", str(run),
                  "--data_name", "folder", "--data_root", str(data), "--device", device,
                  "--batch_size", str(batch), "--save_every", "2", "--log_every", "1"]
        train_s, rss_train, _ = _child(common + ["--steps", "2"])
        resume_s, rss_resume, log = _child(common + ["--steps", "3"])
        if "resumed from" not in log or "at step 2" not in log:
            raise RuntimeError(f"the second run did not resume at step 2:\n{log[-2000:]}")
        evaluate = [sys.executable, "eval.py", "--ckpt", str(run / "ckpt" / "last.pt"),
                    "--device", device, "--data_slide_root", str(slides)]
        eval_s, rss_eval, _ = _child(evaluate + [x for k, v in EVAL.items()
                                                 for x in (f"--{k}", str(v))])
        record.update(ok=True, train_s=round(train_s, 1), resume_s=round(resume_s, 1),
                      eval_s=round(eval_s, 1), wall_s=round(train_s + resume_s + eval_s, 1),
                      peak_rss_mib=round(max(rss_train, rss_resume, rss_eval)),
                      cuda_max_mem_mib=_cuda_peak(run))
    except RuntimeError as err:
        record["error"] = str(err)
    (out / "smoke.json").write_text(json.dumps(record, indent=2))
    print(f"[smoke] pathdino {record['device']} ok={record['ok']} "
          f"train {record.get('train_s')} s, resume {record.get('resume_s')} s, eval "
          f"{record.get('eval_s')} s, peak RSS {record.get('peak_rss_mib')} MiB, CUDA "
          f"{record.get('cuda_max_mem_mib')} MiB, batch {batch} (paper {paper['batch_size']})")
    if not record["ok"]:
        print(record["error"][-3000:], file=sys.stderr)
        raise SystemExit(1)
    return record


if __name__ == "__main__":
    main()

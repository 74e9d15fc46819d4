"""Paper-preset smoke run (issue 24): configs/paper.toml at the paper's sizes on synthetic data.

    python smoke.py [--device auto|cpu|cuda] [--batch_size N] [--out runs/smoke]

224-px synthetic images, the paper student (ResNet-50, random init: no weights are downloaded)
and a random-init CLIP ViT-B/16 stand-in teacher (embedding D = 512) written as a Hugging Face
folder. Runs train.py for 2 steps (1 Align + 1 Distill; the preset's 5000 + 5000 would take
days), resumes for 1 more Distill step, then eval.py; every model and loss setting stays as in
the preset. Writes <out>/smoke.json and prints one summary line; exits 1 on failure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
PAPER_BATCH = 32  # configs/paper.toml: per training domain


def run(cmd: list[str], log: Path) -> tuple[float, float]:
    """Run a child; returns (wall seconds, its peak RSS in MiB); raises on failure."""
    t0 = time.time()
    with log.open("w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        tail = log.read_text().strip().splitlines()[-3:]
        raise RuntimeError(f"{' '.join(cmd[1:3])} failed: {' | '.join(tail)}")
    return time.time() - t0, usage.ru_maxrss / 1024  # ru_maxrss: KiB on Linux


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch_size", type=int, default=PAPER_BATCH)
    ap.add_argument("--out", default="runs/smoke")
    ap.add_argument("--per_domain", type=int, default=12, help="synthetic images per domain")
    args = ap.parse_args(argv)
    out = (ROOT / args.out).resolve()
    run_dir = out / "run"
    report = {"subproject": "vl2v-adip", "device": args.device, "ok": False, "train_s": None,
              "resume_s": None, "eval_s": None, "wall_s": None, "peak_rss_mib": None,
              "cuda_max_mem_mib": None, "batch_size": args.batch_size,
              "paper_batch_size": PAPER_BATCH, "note": ""}
    t0 = time.time()
    try:
        import shutil

        import torch

        from vl2v_adip.runtime import read_metrics, resolve_device
        from vl2v_adip.teacher import write_clip_stand_in

        report["device"] = resolve_device(args.device).type
        shutil.rmtree(run_dir, ignore_errors=True)
        teacher = write_clip_stand_in(out / "clip_vitb16_stand_in")
        train = [sys.executable, "train.py", "--config", "configs/paper.toml",
                 "--data_name", "synthetic", "--synth_per_domain", str(args.per_domain),
                 "--teacher_path", str(teacher), "--student_weights", "",
                 "--device", args.device, "--batch_size", str(args.batch_size),
                 "--out_dir", str(run_dir), "--align_steps", "1"]
        report["train_s"], rss_train = run(train + ["--steps", "1"], out / "train.log")
        report["resume_s"], rss_resume = run(train + ["--steps", "2"], out / "resume.log")
        if "resumed at step 2 (distill)" not in (out / "resume.log").read_text():
            raise RuntimeError("the second train.py run did not resume at step 2")
        report["eval_s"], rss_eval = run([sys.executable, "eval.py", "--ckpt",
                                          str(run_dir / "ckpt" / "last.pt"), "--device",
                                          args.device], out / "eval.log")
        report["peak_rss_mib"] = round(max(rss_train, rss_resume, rss_eval), 1)
        mem = [r["cuda_max_mem_mib"] for r in read_metrics(run_dir) if "cuda_max_mem_mib" in r]
        report["cuda_max_mem_mib"] = round(max(mem), 1) if mem else None
        steps = max(r["step"] for r in read_metrics(run_dir) if r["split"] == "train")
        assert steps == 3, f"expected 3 training steps in metrics.jsonl, found {steps}"
        report["ok"] = True
        report["note"] = (f"1 Align + 1 Distill step, resumed for 1 Distill step; "
                          f"{3 * args.batch_size} images per step; torch {torch.__version__}")
        if args.batch_size != PAPER_BATCH:
            report["note"] += f"; batch reduced from {PAPER_BATCH} per domain (see README)"
    except Exception as err:  # noqa: BLE001 - reported in smoke.json, then exit 1
        report["note"] = f"{type(err).__name__}: {err}"
    report["wall_s"] = round(time.time() - t0, 1)
    out.mkdir(parents=True, exist_ok=True)
    (out / "smoke.json").write_text(json.dumps(report, indent=2))
    print(f"smoke vl2v-adip: {'ok' if report['ok'] else 'FAILED'} device={report['device']} "
          f"train={report['train_s'] and round(report['train_s'], 1)}s "
          f"resume={report['resume_s'] and round(report['resume_s'], 1)}s "
          f"eval={report['eval_s'] and round(report['eval_s'], 1)}s wall={report['wall_s']}s "
          f"rss={report['peak_rss_mib']}MiB cuda={report['cuda_max_mem_mib']}MiB "
          f"batch={args.batch_size}/{PAPER_BATCH} {report['note']}")
    if not report["ok"]:
        raise SystemExit(1)
    return report


if __name__ == "__main__":
    main()

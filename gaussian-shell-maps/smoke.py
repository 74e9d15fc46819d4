"""Paper-preset smoke run (`make smoke-gaussian-shell-maps`, issue 24).

Trains configs/paper.toml for 2 steps on synthetic mannequins rendered at the paper's 512 px
(official label layout) with stand-in assets in the official assets/ layout (procedural body,
no SMPL data), resumes for 1 more step, evaluates a small split, and writes <out>/smoke.json.
Only data/asset sources, step counts, evaluation size, device and (measured, noted) batch size
are overridden: every model and loss setting stays as in the paper preset.

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

from gaussian_shell_maps.config import load_config
from gaussian_shell_maps.runtime import read_metrics
from gaussian_shell_maps.template import write_standin_assets

HERE = Path(__file__).resolve().parent
# The only CPU measurement (README "Paper preset smoke run"): batch 1 peaked at 13.1 GiB RSS on
# a 24 GiB machine, so a larger CPU batch is not the default (pass --batch_size to try one).
CPU_BATCH = 1


def _phase(cmd: list[str], log: Path) -> tuple[float, float]:
    """Run a child process; (seconds, its peak RSS in MiB). Raises on a non-zero exit."""
    start = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=HERE, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        tail = log.read_text()[-1500:]
        raise RuntimeError(f"{cmd[1]} exited with {proc.returncode}: ...{tail}")
    return time.perf_counter() - start, usage.ru_maxrss / 1024  # Linux: KiB


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--batch_size", type=int, default=None)
    parser.add_argument("--out", default="runs/smoke")
    parser.add_argument("--config", default="configs/paper.toml", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    import torch

    device = "cuda" if args.device == "cuda" or (
        args.device == "auto" and torch.cuda.is_available()) else "cpu"
    paper = load_config(HERE / args.config)
    batch = args.batch_size or (paper.batch_size if device == "cuda" else CPU_BATCH)
    out = (HERE / args.out).resolve()
    run = out / "run"
    record = {"subproject": "gaussian-shell-maps", "device": device, "ok": False,
              "train_s": None, "resume_s": None, "eval_s": None, "wall_s": None,
              "peak_rss_mib": None, "cuda_max_mem_mib": None, "batch_size": batch,
              "paper_batch_size": paper.batch_size, "note": ""}
    start = time.perf_counter()
    try:
        out.mkdir(parents=True, exist_ok=True)
        if run.exists():
            import shutil

            shutil.rmtree(run)
        assets = write_standin_assets(out / "assets")
        sources = ["--data_name", "synthetic", "--data_root", "", "--data_num_synthetic", "8",
                   "--data_label_convention", "official", "--smpl_path", str(assets),
                   "--device", device, "--save_every", "2", "--log_every", "1",
                   "--out_dir", str(run), "--batch_size", str(batch)]
        train = [sys.executable, "train.py", "--config", args.config, *sources]
        record["train_s"], rss_train = _phase([*train, "--steps", "2"], out / "train.log")
        record["resume_s"], rss_resume = _phase([*train, "--steps", "3"], out / "resume.log")
        if "resumed from step 2" not in (out / "resume.log").read_text():
            raise RuntimeError("the resumed run did not report 'resumed from step 2'")
        record["eval_s"], rss_eval = _phase(
            [sys.executable, "eval.py", "--ckpt", str(run / "ckpt" / "last.pt"),
             "--num_images", "8", "--keypoint_steps", "5", "--quick"], out / "eval.log")
        record["peak_rss_mib"] = max(rss_train, rss_resume, rss_eval)
        record.update(train_rss_mib=rss_train, resume_rss_mib=rss_resume, eval_rss_mib=rss_eval)
        cuda = [r["cuda_max_mem_mib"] for r in read_metrics(run) if "cuda_max_mem_mib" in r]
        record["cuda_max_mem_mib"] = max(cuda) if cuda else None
        record["ok"] = True
    except Exception as err:  # noqa: BLE001 - recorded in smoke.json, then re-raised as exit 1
        record["note"] = f"FAILED: {type(err).__name__}: {err}"[:2000]
    record["wall_s"] = time.perf_counter() - start
    if batch != paper.batch_size:
        record["note"] = (record["note"] + " " if record["note"] else "") + (
            f"batch {batch} of the paper's {paper.batch_size} (CPU memory/time, see README); "
            f"data: 8 synthetic {paper.data_resolution}px renders, official label layout; "
            "assets: procedural stand-ins")
    (out / "smoke.json").write_text(json.dumps(record, indent=2))
    print(f"smoke gaussian-shell-maps: {'ok' if record['ok'] else 'FAILED'} on {device}, "
          f"wall {record['wall_s']:.0f} s, peak RSS {record['peak_rss_mib'] or 0:.0f} MiB, "
          f"batch {batch}/{paper.batch_size}  {record['note']}")
    if not record["ok"]:
        raise SystemExit(1)
    return record


if __name__ == "__main__":
    main()

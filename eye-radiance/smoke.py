"""Paper preset smoke run (issue 24): synthetic capture at the paper's image size (5472 x 3648,
configs/paper.toml), train 2 steps, resume for 1, evaluate; wall time and peak memory per phase.
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

from eye_radiance.config import load_config

HERE = Path(__file__).resolve().parent


def run(cmd: list[str], log: Path) -> tuple[float, float, str]:
    """(seconds, peak RSS MiB of the child, its output); raises on a non-zero exit."""
    start = time.perf_counter()
    with log.open("w") as f:
        proc = subprocess.Popen(cmd, cwd=HERE, stdout=f, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    text = log.read_text()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd[1:3])} failed: {text[-1500:]}")
    return time.perf_counter() - start, usage.ru_maxrss / 1024, text


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch_size", type=int, default=0, help="0: the paper's 4096 rays")
    parser.add_argument("--out", default="runs/smoke")
    args = parser.parse_args(argv)
    paper = load_config(HERE / "configs" / "paper.toml")
    out = Path(args.out).resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    batch = args.batch_size or paper.batch_rays
    train = [sys.executable, "train.py", "--config", "configs/paper.toml", "--synth_frames", "2",
             "--device", args.device, "--out_dir", str(out / "run"), "--save_every", "2",
             "--log_every", "1", "--batch_rays", str(batch)]
    result = {"subproject": "eye-radiance", "device": args.device, "ok": False,
              "batch_size": batch, "paper_batch_size": paper.batch_rays,
              "cuda_max_mem_mib": None, "note": "synthetic capture, 2 frames (4 eye images)"}
    start = time.perf_counter()
    try:
        result["train_s"], rss_a, _ = run([*train, "--steps", "2"], out / "train.log")
        result["resume_s"], rss_b, log = run([*train, "--steps", "3"], out / "resume.log")
        if "at step 2" not in log:
            raise RuntimeError("the resumed run did not report resuming at step 2")
        result["eval_s"], rss_c, _ = run([sys.executable, "eval.py", "--ckpt",
                                          str(out / "run/ckpt/last.pt"), "--eval_size", "64",
                                          "--eval_rays", "8192"], out / "eval.log")
        result["peak_rss_mib"] = max(rss_a, rss_b, rss_c)
        records = [json.loads(x) for x in (out / "run/metrics.jsonl").read_text().splitlines()]
        mems = [r["cuda_max_mem_mib"] for r in records if "cuda_max_mem_mib" in r]
        result["cuda_max_mem_mib"] = max(mems) if mems else None
        result["device"] = args.device if args.device != "auto" else ("cuda" if mems else "cpu")
        result["ok"] = True
    except Exception as err:  # noqa: BLE001 - recorded in smoke.json, then exit 1
        result["error"] = str(err)[-2000:]
    result["wall_s"] = time.perf_counter() - start
    (out / "smoke.json").write_text(json.dumps(result, indent=2))
    print(f"smoke eye-radiance: ok={result['ok']} wall {result['wall_s']:.0f} s, train "
          f"{result.get('train_s', 0):.0f} s, resume {result.get('resume_s', 0):.0f} s, eval "
          f"{result.get('eval_s', 0):.0f} s, peak RSS {result.get('peak_rss_mib', 0):.0f} MiB, "
          f"batch {batch}/{paper.batch_rays}")
    if not result["ok"]:
        raise SystemExit(1)
    return result


if __name__ == "__main__":
    main()

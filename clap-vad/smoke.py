"""Paper-preset smoke run (`make smoke-clap-vad`): configs/paper.toml at paper sizes, briefly.

Synthetic I3D-sized features (2048-d, 10 crops, 32-128 snippets per video, 11 scene participants
as the official scene split) replace the dataset; every model, loss and optimisation setting
stays as in configs/paper.toml. Steps are communication rounds (each = 10 local epochs):
train 2 rounds, resume for a 3rd (the log must say it resumed at round 2), then evaluate.
Writes <out>/smoke.json and prints one summary line; exits 1 on failure.

  python smoke.py [--device auto|cpu|cuda] [--batch_size N] [--out runs/smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
PAPER = ROOT / "configs" / "paper.toml"
# Dataset-source overrides only: synthetic features at the preset's feature size and crop count.
DATA = ["--data_name", "synthetic", "--data_root", "", "--syn_num_scenes", "11",
        "--syn_train_videos_per_scene", "2", "--syn_test_videos_per_scene", "2",
        "--syn_min_snippets", "32", "--syn_max_snippets", "128"]


def _paper_batch_size() -> int:
    import tomllib

    return int(tomllib.loads(PAPER.read_text())["batch_size"])


def _run(cmd: list[str], log: Path) -> tuple[int, float, float]:
    """(exit status, seconds, peak RSS MiB) of one child process, its output in `log`."""
    start = time.perf_counter()
    with log.open("w") as f:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, time.perf_counter() - start, usage.ru_maxrss / 1024  # KiB -> MiB


def _cuda_peak(run_dir: Path) -> float | None:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return None
    values = [r["cuda_max_mem_mib"] for r in map(json.loads, path.read_text().splitlines())
              if "cuda_max_mem_mib" in r]
    return max(values) if values else None


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--batch_size", type=int, default=None)
    parser.add_argument("--out", default="runs/smoke")
    args = parser.parse_args(argv)
    out = (ROOT / args.out).resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    run_dir = out / "run"
    paper_bs = _paper_batch_size()
    batch = args.batch_size or paper_bs
    common = [sys.executable, "train.py", "--config", str(PAPER), *DATA, "--device", args.device,
              "--batch_size", str(batch), "--out_dir", str(run_dir)]
    record = {"subproject": "clap-vad", "device": args.device, "ok": False, "train_s": None,
              "resume_s": None, "eval_s": None, "wall_s": None, "peak_rss_mib": None,
              "cuda_max_mem_mib": None, "batch_size": batch, "paper_batch_size": paper_bs,
              "note": "steps = communication rounds of 10 local epochs; synthetic 2048-d x 10-crop "
                      "features, 11 scene participants x 2 videos, 32-128 snippets per video"}
    if batch != paper_bs:
        record["note"] += f"; batch_size reduced from {paper_bs} to {batch}"
    rss, start = [], time.perf_counter()
    try:
        phases = [("train_s", [*common, "--steps", "2"], "train.log"),
                  ("resume_s", [*common, "--steps", "3"], "resume.log"),
                  ("eval_s", [sys.executable, "eval.py", "--ckpt", str(run_dir / "ckpt/last.pt"),
                              "--device", args.device], "eval.log")]
        for key, cmd, log in phases:
            code, seconds, peak = _run(cmd, out / log)
            record[key], rss = round(seconds, 1), [*rss, peak]
            if code != 0:
                tail = (out / log).read_text().strip().splitlines()[-1:]
                raise RuntimeError(f"{log}: exit {code}: {tail}")
            if key == "resume_s" and not re.search(r"resuming .* at step 2\b",
                                                   (out / log).read_text()):
                raise RuntimeError("the resumed run did not report resuming at step 2")
        evaluation = json.loads((run_dir / "eval/test.json").read_text())
        record.update(ok=evaluation["step"] == 3, auc=round(evaluation["auc"], 4))
    except Exception as err:  # noqa: BLE001 - recorded in smoke.json, then exit 1
        record["error"] = str(err)
    record["wall_s"] = round(time.perf_counter() - start, 1)
    record["peak_rss_mib"] = round(max(rss), 1) if rss else None
    record["cuda_max_mem_mib"] = _cuda_peak(run_dir)
    (out / "smoke.json").write_text(json.dumps(record, indent=2))
    print(f"clap-vad smoke: {'ok' if record['ok'] else 'FAILED'} device={args.device} "
          f"wall={record['wall_s']} s (train {record['train_s']}, resume {record['resume_s']}, "
          f"eval {record['eval_s']}) peak_rss={record['peak_rss_mib']} MiB "
          f"cuda_max_mem={record['cuda_max_mem_mib']} MiB batch={batch}/{paper_bs}"
          + (f" error: {record['error']}" if "error" in record else ""))
    return record


if __name__ == "__main__":
    raise SystemExit(0 if main()["ok"] else 1)

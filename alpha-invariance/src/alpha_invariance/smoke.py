"""Paper-preset smoke run (issue 24) behind smoke.py: for each family, configs/paper.toml at the
paper's sizes, 2 steps, resume for 1 more, then eval.py; wall time and peak memory per phase;
<out>/smoke.json.

The data is the analytic sphere scene written once in the NeRF-Blender layout at the preset's
image size (800 x 800 for the paper preset; 2 train views, 1 test view), read by the Blender
loader as real data would be. Only the data root, the step count, the evaluation size (central
crop, one view), the device and, where a step cannot fit, the ray batch are overridden; every
model and loss setting stays as the preset holds it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from .config import FAMILIES, load_config
from .data import write_blender_capture

ROOT = Path(__file__).resolve().parents[2]
PAPER = ROOT / "configs" / "paper.toml"


def _run(cmd: list[str], log: Path) -> tuple[int, float, float, str]:
    """(exit status, seconds, child peak RSS in MiB, output) of one subprocess."""
    start = time.perf_counter()
    with log.open("w") as f:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                                env=dict(os.environ, PYTHONUNBUFFERED="1"))
        _, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return code, time.perf_counter() - start, usage.ru_maxrss / 1024, log.read_text()


def smoke_family(family: str, out: Path, device: str, batch: int | None, crop: int,
                 preset: Path = PAPER) -> dict:
    """train 2 steps, resume to 3, eval; one record with times, memory and the outcome."""
    run = out / family / "run"
    data = ["--data_kind", "blender", "--data_root", str(out / "data"), "--eval_num_views", "1",
            "--eval_crop", str(crop)]
    common = [sys.executable, "train.py", "--config", str(preset), "--model_family", family,
              *data, "--device", device, "--out_dir", str(run)]
    if batch:
        common += ["--batch_rays", str(batch)]
    rec: dict = {"family": family, "ok": False}
    phases = {"train": common + ["--steps", "2"], "resume": common + ["--steps", "3"],
              "eval": [sys.executable, "eval.py", "--ckpt", str(run / "ckpt" / "last.pt"),
                       "--num_views", "1", "--crop", str(crop), "--device", device]}
    (out / family).mkdir(parents=True, exist_ok=True)
    rss = 0.0
    for phase, cmd in phases.items():
        code, secs, peak, text = _run(cmd, out / family / f"{phase}.log")
        rec[f"{phase}_s"], rss = round(secs, 1), max(rss, peak)
        if code != 0:
            rec["error"] = f"{phase} exited {code}: " + text.strip().splitlines()[-1][:300]
            break
        if phase == "resume" and f"resumed from {run / 'ckpt'} at step 2" not in text:
            rec["error"] = "resume did not report 'resumed ... at step 2'"
            break
    else:
        rec["ok"] = True
    rec["peak_rss_mib"] = round(rss)
    mem = [r.get("cuda_max_mem_mib") for r in _records(run) if "cuda_max_mem_mib" in r]
    rec["cuda_max_mem_mib"] = round(max(mem)) if mem else None
    evaluated = run / "eval" / "test.json"
    if evaluated.is_file():
        rec["eval_psnr"] = round(json.loads(evaluated.read_text())["psnr"], 2)
    return rec


def _records(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines() if x] if path.is_file() else []


def run_smoke(out: str, device: str, batch: int | None, families: list[str],
              crop: int = 32, preset: Path = PAPER) -> dict:
    """All families; writes <out>/smoke.json and returns it (`preset`: tests use tiny.toml)."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    out_dir = Path(out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    paper = load_config(preset)
    start = time.perf_counter()
    write_blender_capture(out_dir / "data", paper.data_image_size, num_train=2, num_test=1)
    data_s = time.perf_counter() - start
    recs = [smoke_family(f, out_dir, device, batch, crop, preset) for f in families]
    mem = [r["cuda_max_mem_mib"] for r in recs if r["cuda_max_mem_mib"] is not None]
    failed = [f"{r['family']}: {r['error']}" for r in recs if not r["ok"]]
    summary = {
        "subproject": "alpha-invariance", "device": device, "ok": not failed,
        "train_s": round(sum(r.get("train_s", 0) for r in recs), 1),
        "resume_s": round(sum(r.get("resume_s", 0) for r in recs), 1),
        "eval_s": round(sum(r.get("eval_s", 0) for r in recs), 1),
        "wall_s": round(time.perf_counter() - start, 1), "data_s": round(data_s, 1),
        "peak_rss_mib": max(r["peak_rss_mib"] for r in recs),
        "cuda_max_mem_mib": max(mem) if mem else None,
        "batch_size": batch or paper.batch_rays, "paper_batch_size": paper.batch_rays,
        "note": (f"families {','.join(families)} at {paper.data_image_size} px (Blender layout, "
                 f"2 train + 1 test views), "
                 f"{paper.model_num_samples} samples/ray, grid {paper.model_grid_res}, "
                 f"hash 2^{paper.model_hash_log2_size} x {paper.model_hash_levels}; eval on a "
                 f"central {crop}x{crop} crop of 1 view"
                 + ("" if not batch or batch == paper.batch_rays else
                    f"; rays/batch reduced from {paper.batch_rays}")
                 + ("" if not failed else "; FAILED " + " | ".join(failed))),
        "families": recs}
    (out_dir / "smoke.json").write_text(json.dumps(summary, indent=2))
    return summary


def check_families(names: str) -> list[str]:
    families = [f for f in names.split(",") if f]
    unknown = [f for f in families if f not in FAMILIES]
    if unknown or not families:
        from .runtime import ConfigError

        raise ConfigError(f"unknown families {unknown}", f"choose from {', '.join(FAMILIES)}")
    return families

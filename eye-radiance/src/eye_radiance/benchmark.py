"""Throughput figures for bench.py: training rays per second of the official step (cornea,
proposal sampling, nerfacto field, texture + rotation prior, backward) and the cost of the
cornea step relative to the whole forward pass, per preset."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch

from .config import load_config
from .cornea import trace_cornea
from .engine import build_model, build_optimizers, implementation, read_capture, train_step
from .synthetic import make_synthetic_capture

HEADER = (f"{'config':<7}{'rays':>6}{'train rays/s':>14}{'cornea ms':>11}{'forward ms':>12}"
          f"{'cornea/forward':>16}")


def timed(fn, repeats: int, sync=lambda: None) -> float:
    """Seconds per call of `fn`, after one warm-up call."""
    fn()
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - start) / repeats


def bench_capture(path: Path) -> Path:
    """A 2-frame synthetic capture in the official layout, written once."""
    if not (path / "transforms_train.json").is_file():
        make_synthetic_capture(path, n_frames=2, image_size=96)
    return path


def bench_preset(config: Path, rays: int, repeats: int, device: torch.device,
                 capture_dir: Path) -> dict:
    cfg = dataclasses.replace(load_config(config), batch_rays=rays, data_erode_px=3)
    capture = read_capture(cfg, capture_dir).to(device)
    model = build_model(cfg, capture, implementation(cfg, device)).to(device)
    opts, scheds = build_optimizers(cfg, model)
    gen = torch.Generator().manual_seed(0)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    t_step = timed(lambda: train_step(model, opts, scheds, capture, 10, cfg, gen), repeats, sync)
    idx = torch.arange(min(rays, len(capture)), device=device)
    dirs, eye = capture.camera_dirs(idx), capture.eye[idx]
    apex, rot = model.apex_and_rotation(eye)
    with torch.no_grad():
        t_geo = timed(lambda: trace_cornea(dirs, apex, rot, model.cap), repeats, sync)
        t_all = timed(lambda: model(dirs, eye), repeats, sync)
    return {"train_rays_per_s": rays / t_step, "cornea_ms": 1e3 * t_geo,
            "forward_ms": 1e3 * t_all, "cornea_over_forward": t_geo / t_all,
            "implementation": implementation(cfg, device)}


def row(name: str, rays: int, r: dict) -> str:
    return (f"{name:<7}{rays:>6}{r['train_rays_per_s']:>14.0f}{r['cornea_ms']:>11.2f}"
            f"{r['forward_ms']:>12.1f}{r['cornea_over_forward']:>16.4f}")

"""Throughput: training rays per second (official step: cornea, proposal sampling, nerfacto
field, texture + rotation prior, backward) and the cost of the cornea step relative to the
scene query, tiny vs paper preset. `--gpu`: the same on CUDA with nerfstudio's CUDA paths
(tiny-cuda-nn when installed), torch vs tcnn texture, written to --json.

    python bench.py [--rays 2048] [--gpu] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from eye_radiance.config import load_config
from eye_radiance.cornea import trace_cornea
from eye_radiance.engine import build_model, build_optimizers, implementation, train_step
from eye_radiance.synthetic import make_synthetic_capture

HERE = Path(__file__).resolve().parent


def _time(fn, repeats: int, sync=lambda: None) -> float:
    fn()
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - start) / repeats


def bench(name: str, rays: int, repeats: int, device: torch.device, capture_dir: Path) -> dict:
    from eye_radiance.engine import read_capture

    cfg = load_config(HERE / "configs" / f"{name}.toml")
    cfg = cfg.__class__(**{**cfg.__dict__, "batch_rays": rays, "data_erode_px": 3})
    capture = read_capture(cfg, capture_dir).to(device)
    model = build_model(cfg, capture, implementation(cfg, device)).to(device)
    opts, scheds = build_optimizers(cfg, model)
    gen = torch.Generator().manual_seed(0)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    t_step = _time(lambda: train_step(model, opts, scheds, capture, 10, cfg, gen), repeats, sync)
    idx = torch.arange(min(rays, len(capture)), device=device)
    dirs, eye = capture.camera_dirs(idx), capture.eye[idx]
    apex, rot = model.apex_and_rotation(eye)
    with torch.no_grad():
        t_geo = _time(lambda: trace_cornea(dirs, apex, rot, model.cap), repeats, sync)
        t_all = _time(lambda: model(dirs, eye), repeats, sync)
    return {"train_rays_per_s": rays / t_step, "cornea_ms": 1e3 * t_geo,
            "forward_ms": 1e3 * t_all, "cornea_over_forward": t_geo / t_all,
            "implementation": implementation(cfg, device)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rays", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gpu", action="store_true")
    parser.add_argument("--json", default="")
    args = parser.parse_args(argv)
    if args.gpu and not torch.cuda.is_available():
        print("no CUDA: GPU figures skipped")
        return {}
    device = torch.device("cuda" if args.gpu else "cpu")
    capture_dir = HERE / "runs" / "bench_capture"
    if not (capture_dir / "transforms_train.json").is_file():
        make_synthetic_capture(capture_dir, n_frames=2, image_size=96)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {device}")
    print(f"{'config':<7}{'rays':>6}{'train rays/s':>14}{'cornea ms':>11}{'forward ms':>12}"
          f"{'cornea/forward':>16}")
    out = {}
    for name in ("tiny", "paper"):
        repeats = args.repeats if name == "tiny" or args.gpu else 1  # paper: slow on CPU
        r = bench(name, args.rays, repeats, device, capture_dir)
        print(f"{name:<7}{args.rays:>6}{r['train_rays_per_s']:>14.0f}{r['cornea_ms']:>11.2f}"
              f"{r['forward_ms']:>12.1f}{r['cornea_over_forward']:>16.4f}")
        out[name] = r
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"device": str(device), **out}, indent=2))
    return out


if __name__ == "__main__":
    main()

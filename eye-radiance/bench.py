"""Throughput: reflected rays per second for training on this machine, and the cost of the
cornea intersection + reflection step relative to the scene-field query (ratio).

    python bench.py [--rays 4096] [--repeats 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

from eye_radiance.config import load_config
from eye_radiance.data import RaySet
from eye_radiance.engine import EyeModel, train_step
from eye_radiance.geometry import intersect_cornea, reflect
from eye_radiance.render import render_field

HERE = Path(__file__).resolve().parent


def _time(fn, repeats: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def fake_rays(n: int, gen: torch.Generator) -> RaySet:
    """Camera rays aimed at two corneas 400 mm away (no image I/O in the timing)."""
    c = torch.tensor([[[-31.0, 0.0, 400.0], [31.0, 0.0, 400.0]]])
    g = torch.nn.functional.normalize(-c, dim=-1)
    eye = torch.randint(0, 2, (n,), generator=gen)
    target = c[0, eye] + 8 * (torch.rand(n, 3, generator=gen) - 0.5)
    dirs = torch.nn.functional.normalize(target, dim=-1)
    return RaySet(
        dirs,
        torch.rand(n, 3, generator=gen),
        torch.zeros(n, dtype=torch.int64),
        eye,
        c,
        g,
        torch.eye(3),
        [0],
        [],
    )


def bench(name: str, rays: int, repeats: int) -> dict[str, float]:
    cfg = load_config(HERE / "configs" / f"{name}.toml")
    cfg = dataclasses.replace(cfg, batch_rays=rays, pose_refine_start=0)
    gen = torch.Generator().manual_seed(0)
    data = fake_rays(rays, gen)
    model = EyeModel(cfg, 1, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    t_step = _time(lambda: train_step(model, opt, data, 10, cfg, gen), repeats)
    c, g = data.c_init[0, data.eye], data.g_init[0, data.eye]
    origins = torch.zeros_like(data.dirs)

    def geometry():
        hit = intersect_cornea(origins, data.dirs, c, g)
        return hit, reflect(data.dirs, hit["normals"])

    hit, refl = geometry()
    t_geo = _time(geometry, repeats)
    with torch.no_grad():
        t_field = _time(
            lambda: render_field(
                model.field,
                hit["points"],
                refl,
                cfg.render_near,
                cfg.render_far,
                cfg.render_samples,
                False,
            ),
            repeats,
        )
    return {
        "rays_per_s": rays / t_step,
        "geometry_ms": 1e3 * t_geo,
        "field_ms": 1e3 * t_field,
        "geometry_over_field": t_geo / t_field,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rays", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {device} (CPU timings)")
    print(
        f"{'config':<7}{'rays':>6}{'train rays/s':>14}{'cornea+reflect ms':>19}"
        f"{'field query ms':>16}{'geometry/field':>16}"
    )
    out = {}
    for name in ("tiny", "paper"):
        r = bench(name, args.rays, args.repeats if name == "tiny" else 1)  # paper: slow on CPU
        print(
            f"{name:<7}{args.rays:>6}{r['rays_per_s']:>14.0f}{r['geometry_ms']:>19.2f}"
            f"{r['field_ms']:>16.1f}{r['geometry_over_field']:>16.4f}"
        )
        out[name] = r
    print(
        "field query = volume rendering of the reflected rays (no grad); train = full step with "
        "backward, pose refinement on"
    )
    return out


if __name__ == "__main__":
    main()

"""`make bench-gaussian-shell-maps`: throughput side by side with references, measured in one run.

1. EWA projection: ours vs gsplat's pure-PyTorch `_fully_fused_projection` (same Gaussians).
2. Full CPU render (projection + binning + compositing): ours vs gsplat's CPU-runnable torch
   path, i.e. its projection + `_isect_tiles` binning (gsplat's torch `_rasterize_to_pixels`
   calls a CUDA kernel, so its compositing cannot run on CPU: the reference time is a lower bound).
3. Generator forward (texture stack + LBS + splat) at the tiny and paper-like sizes.
4. `--gpu [--json PATH]` (issue 24): gsplat's CUDA `rasterization` renders/s at 512 x 512 with
   the paper preset's Gaussian count, and the paper-size generator forward on CUDA; without
   CUDA it prints "no CUDA: GPU figures skipped" and exits 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch


def _timeit(fn, repeats: int = 5) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _scene(n: int, gen: torch.Generator):
    means = torch.randn(1, n, 3, generator=gen) * torch.tensor([0.25, 0.6, 0.15])
    quats = torch.randn(1, n, 4, generator=gen)
    scales = torch.rand(1, n, 3, generator=gen) * 0.01 + 0.003
    view = torch.eye(4)[None].clone()
    view[0, 2, 3] = 3.6
    return means, quats, scales, torch.rand(1, n, generator=gen), torch.rand(1, n, 3, generator=gen), view


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gpu", action="store_true", help="GPU figures only")
    parser.add_argument("--json", default=None, help="write the figures to this JSON file")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    result = gpu_figures() if args.gpu else cpu_figures()
    if args.json and result:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


def gpu_figures() -> dict:
    if not torch.cuda.is_available():
        print("no CUDA: GPU figures skipped")
        return {}
    result = {"gsplat_cuda_512": _gsplat_cuda(), "generator_cuda_512": _generator_cuda()}
    print(json.dumps(result, indent=2))
    return result


def cpu_figures() -> dict:
    from gsplat.cuda import _torch_impl as ref

    from gaussian_shell_maps.render import covariance_3d, project_gaussians, render_gaussians

    torch.set_num_threads(max(1, torch.get_num_threads()))
    gen = torch.Generator().manual_seed(0)
    rows = []
    for n, res in [(4000, 128), (12000, 256)]:
        means, quats, scales, ops, cols, view = _scene(n, gen)
        f = res / (2 * 0.268)  # 30 degree field of view
        K = torch.tensor([[f, 0, res / 2], [0, f, res / 2], [0, 0, 1.0]])[None]
        cov = covariance_3d(quats, scales)
        t_ours = _timeit(lambda: project_gaussians(means, cov, view, K, res, res))
        t_ref = _timeit(lambda: ref._fully_fused_projection(means, cov, view[:, None], K[:, None],
                                                            res, res))
        rows.append({"what": f"projection N={n}", "ours_s": t_ours, "gsplat_torch_s": t_ref,
                     "speedup": t_ref / t_ours})
        t_render = _timeit(lambda: render_gaussians(means, quats, scales, ops, cols, view, K, res,
                                                    res), repeats=2)

        def gsplat_cpu_path():
            radii, m2d, depths, _, _ = ref._fully_fused_projection(
                means, cov, view[:, None], K[:, None], res, res)
            tiles = (res + 15) // 16
            ref._isect_tiles(m2d, radii, depths, 16, tiles, tiles)

        t_gs = _timeit(gsplat_cpu_path, repeats=1)
        rows.append({"what": f"render {res}px N={n} (gsplat: proj+binning only)", "ours_s": t_render,
                     "gsplat_torch_s": t_gs, "speedup": t_gs / t_render})
    result = {"rows": rows, "generator": _generator_times()}
    print(f"{'benchmark':52s} {'ours [s]':>10s} {'gsplat-torch [s]':>17s} {'ratio':>7s}")
    for r in rows:
        print(f"{r['what']:52s} {r['ours_s']:10.4f} {r['gsplat_torch_s']:17.4f} {r['speedup']:6.1f}x")
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2))
    return result


def _generator_times() -> dict:
    from gaussian_shell_maps.config import load_config
    from gaussian_shell_maps.data import random_labels
    from gaussian_shell_maps.engine import gsm_config
    from gaussian_shell_maps.model import GSMConfig, GSMGenerator
    from gaussian_shell_maps.template import load_body_template

    template = load_body_template()
    out = {}
    for name, cfg, res in [("tiny", gsm_config(load_config("configs/tiny.toml")), 32),
                           ("mid", GSMConfig(num_gaussians=20000, tex_resolution=128,
                                             tex_channels=32, channel_max=64), 256)]:
        g = GSMGenerator(cfg, template).eval()
        labels = random_labels(1, torch.Generator().manual_seed(0))
        z = torch.randn(1, cfg.z_dim)
        with torch.no_grad():
            out[f"{name}_forward_s (N={cfg.num_gaussians}, tex {cfg.tex_resolution}, {res}px)"] = \
                _timeit(lambda: g(z, labels, res, noise=False), repeats=2)
    return out


def _paper_count() -> int:
    from gaussian_shell_maps.config import load_config

    return load_config("configs/paper.toml").num_gaussians


def _gsplat_cuda() -> dict:
    """gsplat rasterization renders/s at 512 x 512, the paper preset's Gaussian count."""
    from gsplat import rasterization

    n = _paper_count()
    gen = torch.Generator().manual_seed(0)
    means, quats, scales, ops, cols, view = (t.cuda() for t in _scene(n, gen))
    f = 512 / (2 * 0.268)
    K = torch.tensor([[f, 0, 256], [0, f, 256], [0, 0, 1.0]], device="cuda")[None]
    bg = torch.ones(1, 3, device="cuda")

    def run():
        rasterization(means[0], quats[0], scales[0], ops[0], cols[0], view, K, 512, 512,
                      render_mode="RGB+D", backgrounds=bg)
        torch.cuda.synchronize()

    t = _timeit(run, repeats=20)
    return {"renders_per_s": 1 / t, "num_gaussians": n, "resolution": 512,
            "device": torch.cuda.get_device_name()}


def _generator_cuda() -> dict:
    """Full paper-size generator forward (StyleGAN2 texture stack 512, LBS, gsplat) on CUDA."""
    from gaussian_shell_maps.config import load_config
    from gaussian_shell_maps.data import random_labels
    from gaussian_shell_maps.engine import gsm_config
    from gaussian_shell_maps.model import GSMGenerator
    from gaussian_shell_maps.template import load_body_template

    cfg = gsm_config(load_config("configs/paper.toml"))
    g = GSMGenerator(cfg, load_body_template()).cuda().eval()
    labels = random_labels(1, torch.Generator().manual_seed(0), convention="official").cuda()
    z = torch.randn(1, cfg.z_dim, device="cuda")

    def run():
        with torch.no_grad():
            g(z, labels, 512, noise=False, backend="gsplat")
        torch.cuda.synchronize()

    t = _timeit(run, repeats=5)
    return {"forward_s": t, "num_gaussians": g.num_gaussians, "tex_resolution": cfg.tex_resolution,
            "resolution": 512, "assets": "procedural mannequin (no SMPL)"}


if __name__ == "__main__":
    main()

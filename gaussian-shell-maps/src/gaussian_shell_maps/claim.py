"""The claim check's two measurements (`reproduce.py` orchestrates and writes the tables).

A. Render time per image of the same generated shell Gaussians: splatting (render.py) vs
   ray-marching the same shell features (volume.py). Paper claim (Sec. 1, 4): splatting makes
   GSM far cheaper to render than volumetric 3D human GANs.
B. G_ema over a short GAN run on the synthetic mannequins, every `eval_every` steps: FID / KID
   (configured feature extractor; random-conv stand-in offline), and measures that can tell a
   trained generator from an untrained one at CPU scale because they know what the data is:
   garment_fd (Frechet distance in the features of GarmentNet, a CNN trained here on the real
   renders), part_fd (Frechet distance of per-part colour statistics under the conditioning
   pose's part layout), part_r2 (colour variance explained by that layout) and silhouette IoU
   with the conditioning body. Real-vs-real values of the same sample size are the floors.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import torch

from . import metrics as M
from .config import parse_config
from .engine import build_dataset, build_models, fit, load_run
from .evaluation import _real_and_labels, part_measures, quick_quality
from .model import GSMConfig, GSMGenerator
from .render import render_gaussians
from .runtime import read_metrics, seed_everything
from .template import load_body_template
from .tools import front_label
from .volume import volume_render


def render_timing(counts=(1000, 4000), resolutions=(32, 64, 128), repeats: int = 3) -> list[dict]:
    """Seconds per image, splatting vs volume rendering of one generated human (CPU)."""
    template = load_body_template()
    rows = []
    for n in counts:
        gen = GSMGenerator(GSMConfig(num_gaussians=n, z_dim=32, w_dim=32, tex_resolution=16,
                                     tex_channels=16, channel_max=32), template).eval()
        label = front_label()[None]
        with torch.no_grad():
            g = gen(torch.randn(1, 32, generator=torch.Generator().manual_seed(0)), label, 64,
                    noise=False)["gaussians"]
        for res in resolutions:
            posed = gen.pose(label, res)
            t0 = time.perf_counter()
            for _ in range(repeats):
                with torch.no_grad():
                    render_gaussians(**g, viewmats=posed["viewmats"], Ks=posed["Ks"], width=res,
                                     height=res, background=torch.ones(1, 3))
            t_splat = (time.perf_counter() - t0) / repeats
            t0 = time.perf_counter()
            volume_render(g["means"][0], g["colors"][0], g["opacities"][0], posed["viewmats"][0],
                          posed["Ks"][0], res, res, num_samples=32)
            t_vol = time.perf_counter() - t0
            rows.append({"num_gaussians": n, "resolution": res, "splat_s": t_splat,
                         "volume_s": t_vol, "speedup": t_vol / t_splat})
            print(rows[-1], flush=True)
    return rows


def real_floor(cfg, data) -> dict[str, float]:
    """Every measure for two disjoint halves of the real images, each of the evaluation size:
    what a perfect generator would score with this many samples (R^2 / IoU: of real images)."""
    n = min(cfg.eval_num_images, len(data) // 2)
    real, labels = _real_and_labels(data, 2 * n)  # the first n are the images quick_quality uses
    extractor = M.feature_extractor(cfg.inception_path)
    a, b = extractor(real[:n]), extractor(real[n:])
    out = {"fid": M.fid(a, b), "kid": M.kid(a, b, subset_size=min(100, n))}
    if hasattr(data, "render_parts"):
        # the second half plays the generator: its images under its own conditioning labels
        out.update(part_measures(data, real[:n], labels[:n], real[n:], labels[n:],
                                 cfg.eval_garment_steps))
    return out


def fid_curve(run: Path, config: str, seed: int, steps: int, eval_every: int,
              overrides: tuple[str, ...] = ()) -> dict:
    """Train `config` (+ `--field value` overrides) for `steps` with FID/KID of G_ema every
    `eval_every` steps (step 0 = the untrained generator that fit() starts from).
    Returns {"seed", "curve": [{"step", "fid", "kid", ...}, ...], "floor": {...}}."""
    shutil.rmtree(run, ignore_errors=True)
    cfg = parse_config(["--config", config, "--seed", str(seed), "--steps", str(steps),
                        "--eval_every", str(eval_every), "--out_dir", str(run), *overrides])
    seed_everything(cfg.seed)  # same initial weights as fit() builds
    template, _, gen_ema, _ = build_models(cfg, torch.device("cpu"))
    data = build_dataset(cfg, template)
    curve = [{"step": 0, **quick_quality(cfg, gen_ema, data)}]
    fit(cfg)
    curve += [{k: v for k, v in r.items() if k != "split"}
              for r in read_metrics(run) if r["split"] == "eval"]
    _, final, _, _, step = load_run(run / "ckpt" / "last.pt")
    curve.append({"step": step, **quick_quality(cfg, final, data)})
    return {"seed": seed, "curve": curve, "floor": real_floor(cfg, data)}

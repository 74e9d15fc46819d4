"""`make reproduce-gaussian-shell-maps`: the paper's efficiency claim and a short GAN run, small.

A. Render time per image of the same generated shell Gaussians: splatting (ours, CPU) vs a
   ray-marched volume rendering of the same shell features (volume.py), for several Gaussian
   counts and resolutions. Paper claim: splatting is far cheaper than volume rendering.
B. Short GAN training on the synthetic mannequins (configs/tiny.toml): FID/KID (stand-in
   features) of G_ema at initialisation and during training should fall.
Writes runs/reproduce/{results.json, results.md, render_time.png, fid_kid.png}.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

OUT = Path("runs/reproduce")


def render_timing() -> list[dict]:
    from gaussian_shell_maps.model import GSMConfig, GSMGenerator
    from gaussian_shell_maps.render import render_gaussians
    from gaussian_shell_maps.template import load_body_template
    from gaussian_shell_maps.tools import front_label
    from gaussian_shell_maps.volume import volume_render

    template = load_body_template()
    rows = []
    for n in (1000, 4000):
        gen = GSMGenerator(GSMConfig(num_gaussians=n, z_dim=32, w_dim=32, tex_resolution=16,
                                     tex_channels=16, channel_max=32), template).eval()
        label = front_label()[None]
        with torch.no_grad():
            g = gen(torch.randn(1, 32, generator=torch.Generator().manual_seed(0)), label, 64,
                    noise=False)["gaussians"]
        for res in (32, 64, 128):
            posed = gen.pose(label, res)
            t0 = time.perf_counter()
            for _ in range(3):
                with torch.no_grad():
                    render_gaussians(**g, viewmats=posed["viewmats"], Ks=posed["Ks"], width=res,
                                     height=res, background=torch.ones(1, 3))
            t_splat = (time.perf_counter() - t0) / 3
            t0 = time.perf_counter()
            volume_render(g["means"][0], g["colors"][0], g["opacities"][0], posed["viewmats"][0],
                          posed["Ks"][0], res, res, num_samples=32)
            t_vol = time.perf_counter() - t0
            rows.append({"num_gaussians": n, "resolution": res, "splat_s": t_splat,
                         "volume_s": t_vol, "speedup": t_vol / t_splat})
            print(rows[-1], flush=True)
    return rows


def gan_run() -> list[dict]:
    from gaussian_shell_maps.config import parse_config
    from gaussian_shell_maps.engine import build_dataset, build_models, fit
    from gaussian_shell_maps.evaluation import quick_quality
    from gaussian_shell_maps.runtime import read_metrics, seed_everything

    run = OUT / "gan"
    if run.exists():
        import shutil

        shutil.rmtree(run)
    cfg = parse_config(["--config", "configs/tiny.toml", "--steps", "120", "--eval_every", "40",
                        "--out_dir", str(run)])
    seed_everything(cfg.seed)  # G_ema at step 0 = the initial generator of fit()
    template, _, gen_ema, _ = build_models(cfg, torch.device("cpu"))
    data = build_dataset(cfg, template)
    curve = [{"step": 0, **quick_quality(cfg, gen_ema, data)}]
    fit(cfg)
    curve += [r for r in read_metrics(run) if r["split"] == "eval"]
    from gaussian_shell_maps.engine import load_run

    _, final_g, _, _, step = load_run(run / "ckpt" / "last.pt")
    curve.append({"step": step, **quick_quality(cfg, final_g, data)})
    return [{"step": r["step"], "fid": r["fid"], "kid": r["kid"]} for r in curve]


def figures(timing: list[dict], curve: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for n in sorted({r["num_gaussians"] for r in timing}):
        rs = [r for r in timing if r["num_gaussians"] == n]
        ax.plot([r["resolution"] for r in rs], [r["splat_s"] for r in rs], "o-", label=f"splat N={n}")
        ax.plot([r["resolution"] for r in rs], [r["volume_s"] for r in rs], "s--", label=f"volume N={n}")
    ax.set(xlabel="resolution [px]", ylabel="seconds / image (CPU)", yscale="log")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(OUT / "render_time.png", dpi=120)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot([c["step"] for c in curve], [c["fid"] for c in curve], "o-", label="FID (stand-in)")
    ax2 = ax.twinx()
    ax2.plot([c["step"] for c in curve], [c["kid"] for c in curve], "s--", color="C1", label="KID")
    ax.set(xlabel="training step", ylabel="FID (stand-in features)")
    ax2.set_ylabel("KID (stand-in features)")
    fig.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(OUT / "fid_kid.png", dpi=120)


def main() -> dict:
    OUT.mkdir(parents=True, exist_ok=True)
    timing = render_timing()
    curve = gan_run()
    figures(timing, curve)
    lines = ["| N Gaussians | resolution | splat [s] | volume [s] | volume / splat |", "|---|---|---|---|---|"]
    lines += [f"| {r['num_gaussians']} | {r['resolution']} | {r['splat_s']:.4f} | {r['volume_s']:.4f}"
              f" | {r['speedup']:.1f}x |" for r in timing]
    lines += ["", "| step | FID (stand-in) | KID (stand-in) |", "|---|---|---|"]
    lines += [f"| {c['step']} | {c['fid']:.4f} | {c['kid']:.5f} |" for c in curve]
    (OUT / "results.md").write_text("\n".join(lines) + "\n")
    result = {"render_timing": timing, "gan_curve": curve}
    (OUT / "results.json").write_text(json.dumps(result, indent=2))
    print("\n".join(lines))
    return result


if __name__ == "__main__":
    main()

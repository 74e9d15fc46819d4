"""Claim check (CPU, <= 15 min): the paper's ablation on one synthetic capture in the official
layout: full method vs no texture decomposition vs no pose refinement vs a spherical cornea,
over seeds (mean +/- std). Writes <out>/results.{md,json} and <out>/reproduce.png.

    python reproduce.py [--steps 150] [--seeds 3] [--out runs/reproduce]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from eye_radiance.config import parse_config
from eye_radiance.engine import evaluate, fit
from eye_radiance.runtime import cli
from eye_radiance.synthetic import make_synthetic_capture

HERE = Path(__file__).resolve().parent
VARIANTS = {"full": [], "no texture decomposition": ["--texture", "false"],
            "no pose refinement": ["--pose_refine", "false"],
            "spherical cornea": ["--model_cornea", "sphere"]}
COLUMNS = ("psnr", "ssim", "lpips_random_backbone", "recon_psnr", "pose_axis_err_deg",
           "pose_apex_err_mm", "iris_mse")
FAST = ["--log_every", "50", "--save_every", "0"]


def figure(results: dict[str, list[dict]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    names = list(results)
    for ax, key in zip(axes, ("psnr", "recon_psnr", "pose_axis_err_deg")):
        vals = [[r[key] for r in results[n]] for n in names]
        ax.bar(range(len(names)), [statistics.mean(v) for v in vals],
               yerr=[statistics.pstdev(v) for v in vals], capsize=4)
        ax.set_xticks(range(len(names)), [n.replace(" ", "\n") for n in names], fontsize=7)
        ax.set_title(key, fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default="runs/reproduce")
    args = parser.parse_args(argv)
    out = Path(args.out)
    capture = out / "capture"
    if not (capture / "transforms_train.json").is_file():
        make_synthetic_capture(capture, n_frames=8, image_size=96, seed=0)
    results: dict[str, list[dict]] = {name: [] for name in VARIANTS}
    for seed in range(args.seeds):
        for name, extra in VARIANTS.items():
            run = out / f"{name.replace(' ', '_')}_seed{seed}"
            cfg = parse_config(["--config", str(HERE / "configs/tiny.toml"), *FAST,
                                "--data_root", str(capture), "--steps", str(args.steps),
                                "--seed", str(seed), "--out_dir", str(run), *extra])
            fit(cfg)
            results[name].append(evaluate(run / "ckpt" / "last.pt", figures=seed == 0))
    lines = ["| variant | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for name, runs in results.items():
        cells = []
        for c in COLUMNS:
            vals = [r[c] for r in runs]
            cells.append(f"{statistics.mean(vals):.4g} +/- {statistics.pstdev(vals):.2g}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    init = results["full"][0]
    lines.append(f"\n{args.seeds} seed(s), {args.steps} steps each. Initial (official) pose "
                 f"error: axis {init['pose_axis_err_init_deg']:.2f} deg, apex "
                 f"{init['pose_apex_err_init_mm']:.2f} mm.")
    md = "\n".join(lines)
    (out / "results.md").write_text(md + "\n")
    (out / "results.json").write_text(json.dumps(results, indent=2))
    figure(results, out / "reproduce.png")
    print(md)
    return results


if __name__ == "__main__":
    cli(main)

"""Claim check: the paper's ablation (pose optimisation and texture decomposition both help;
shown qualitatively in the paper and on its project page) run small on one synthetic capture in the
official layout: full method vs no texture decomposition vs no pose refinement vs a spherical
cornea, over seeds, summarised as mean +/- std (population std over seeds)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from .config import parse_config
from .engine import evaluate, fit
from .synthetic import make_synthetic_capture

VARIANTS = {"full": [], "no texture decomposition": ["--texture", "false"],
            "no pose refinement": ["--pose_refine", "false"],
            "spherical cornea": ["--model_cornea", "sphere"]}
COLUMNS = ("psnr", "ssim", "lpips_random_backbone", "recon_psnr", "pose_axis_err_deg",
           "pose_apex_err_mm", "iris_mse")
FAST = ["--log_every", "50", "--save_every", "0"]


def run_variants(config: Path, out: Path, steps: int, seeds: int,
                 variants: dict[str, list[str]] | None = None, extra: tuple[str, ...] = (),
                 capture_frames: int = 8, capture_size: int = 96) -> dict[str, list[dict]]:
    """Train and evaluate every variant for every seed on one capture (written once into
    `out/capture`); returns {variant: [eval dict per seed]}."""
    variants = VARIANTS if variants is None else variants
    capture = out / "capture"
    if not (capture / "transforms_train.json").is_file():
        make_synthetic_capture(capture, n_frames=capture_frames, image_size=capture_size, seed=0)
    results: dict[str, list[dict]] = {name: [] for name in variants}
    for seed in range(seeds):
        for name, flags in variants.items():
            run = out / f"{name.replace(' ', '_')}_seed{seed}"
            cfg = parse_config(["--config", str(config), *FAST, *extra, "--data_root",
                                str(capture), "--steps", str(steps), "--seed", str(seed),
                                "--out_dir", str(run), *flags])
            fit(cfg)
            results[name].append(evaluate(run / "ckpt" / "last.pt", figures=seed == 0))
    return results


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.pstdev(values)


def table(results: dict[str, list[dict]], steps: int) -> str:
    """Markdown table, one row per variant, each cell `mean +/- std` over the seeds."""
    lines = ["| variant | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for name, runs in results.items():
        cells = [f"{m:.4g} +/- {s:.2g}" for m, s in (mean_std([r[c] for r in runs])
                                                       for c in COLUMNS)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    first = next(iter(results.values()))
    init = first[0]
    lines.append(f"\n{len(first)} seed(s), {steps} steps each. Initial (official) pose "
                 f"error: axis {init['pose_axis_err_init_deg']:.2f} deg, apex "
                 f"{init['pose_apex_err_init_mm']:.2f} mm.")
    return "\n".join(lines)


def figure(results: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    names = list(results)
    for ax, key in zip(axes, ("psnr", "recon_psnr", "pose_axis_err_deg")):
        stats = [mean_std([r[key] for r in results[n]]) for n in names]
        ax.bar(range(len(names)), [m for m, _ in stats], yerr=[s for _, s in stats], capsize=4)
        ax.set_xticks(range(len(names)), [n.replace(" ", "\n") for n in names], fontsize=7)
        ax.set_title(key, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(results: dict[str, list[dict]], out: Path, steps: int) -> str:
    """results.md, results.json and reproduce.png in `out`; returns the markdown."""
    md = table(results, steps)
    (out / "results.md").write_text(md + "\n")
    (out / "results.json").write_text(json.dumps(results, indent=2))
    figure(results, out / "reproduce.png")
    return md

"""`make reproduce-gaussian-shell-maps`: the paper's efficiency claim and a short GAN run, small.

A. Render time per image, splatting vs ray-marching the same shell Gaussians (claim.py).
B. G_ema over 300 steps of configs/tiny.toml, 3 seeds (600 does not fit 15 min on 2 cores):
   FID/KID (random-conv stand-in features) and the data-aware measures garment_fd, part_fd,
   part_r2, silhouette IoU (claim.py), each next to its real-vs-real value.
Writes runs/reproduce/{results.json, results.md, *.png}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from gaussian_shell_maps.claim import fid_curve, render_timing

OUT = Path("runs/reproduce")
SEEDS, STEPS, EVAL_EVERY = (0, 1, 2), 300, 100  # 300 steps: 11 min on 2 idle cores (README)
MEASURES = [("garment_fd", "lower"), ("part_fd", "lower"), ("part_r2", "higher"),
            ("silhouette_iou", "higher"), ("fid", "lower"), ("kid", "lower")]


def figures(timing: list[dict], runs: list[dict]) -> None:
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
    fig, axes = plt.subplots(2, 3, figsize=(12, 6.5))
    for ax, (key, better) in zip(axes.flat, MEASURES):
        for i, run in enumerate(runs):
            ax.plot([c["step"] for c in run["curve"]], [c[key] for c in run["curve"]], "o-",
                    ms=3, color=f"C{i}", label=f"seed {run['seed']}")
            ax.axhline(run["floor"][key], color=f"C{i}", ls=":", lw=1)
        ax.set(xlabel="training step", ylabel=f"{key} ({better} is better)")
    axes.flat[0].legend(fontsize=7, title="dotted: real vs real", title_fontsize=7)
    fig.tight_layout()
    fig.savefig(OUT / "gan_measures.png", dpi=120)


def _ms(values: list[float]) -> str:
    if len(values) < 2:  # one seed (a trimmed run): no spread to report
        return f"{values[0]:.4g}"
    return f"{statistics.mean(values):.4g} +/- {statistics.stdev(values):.2g}"


def table(timing: list[dict], runs: list[dict]) -> str:
    lines = ["| N Gaussians | resolution | splat [s] | volume [s] | volume / splat |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['num_gaussians']} | {r['resolution']} | {r['splat_s']:.4f} | "
              f"{r['volume_s']:.4f} | {r['speedup']:.1f}x |" for r in timing]
    last_step = runs[0]["curve"][-1]["step"]  # the step of the "last" column below
    lines += ["", (f"| measure (better) | untrained (step 0) | step {last_step} | real vs real | "
                   "seeds better at the end |"), "|---|---|---|---|---|"]
    for key, better in MEASURES:
        first = [r["curve"][0][key] for r in runs]
        last = [r["curve"][-1][key] for r in runs]
        floor = [r["floor"][key] for r in runs]
        wins = sum((b < a) if better == "lower" else (b > a) for a, b in zip(first, last))
        lines.append(f"| {key} ({better}) | {_ms(first)} | {_ms(last)} | {_ms(floor)} | "
                     f"{wins}/{len(runs)} |")
    for key, _ in MEASURES:
        heads = " | ".join(f"seed {r['seed']} {key}" for r in runs)
        lines += ["", f"| step | {heads} |", "|---" * (1 + len(runs)) + "|"]
        for i, point in enumerate(runs[0]["curve"]):
            lines.append(f"| {point['step']} | " + " | ".join(f"{r['curve'][i][key]:.4g}"
                                                         for r in runs) + " |")
        lines.append("| real vs real | " + " | ".join(f"{r['floor'][key]:.4g}" for r in runs)
                     + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=STEPS, help="GAN steps per seed (trim)")
    parser.add_argument("--eval_every", type=int, default=EVAL_EVERY)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    start, load_start = time.perf_counter(), os.getloadavg()
    timing = render_timing()
    (OUT / "results.partial.json").unlink(missing_ok=True)
    runs = []
    for seed in args.seeds:
        runs.append(fid_curve(OUT / f"gan_seed{seed}", "configs/tiny.toml", seed, args.steps,
                              args.eval_every))
        # kept if a later seed is cut short
        (OUT / "results.partial.json").write_text(json.dumps(
            {"render_timing": timing, "gan_runs": runs, "steps": args.steps}, indent=2))
    figures(timing, runs)
    result = {"render_timing": timing, "gan_runs": runs, "wall_s": time.perf_counter() - start,
              "steps": args.steps, "seeds": args.seeds, "torch_threads": _threads(),
              "loadavg_start": load_start, "loadavg_end": os.getloadavg()}
    footer = (f"\nwall {result['wall_s']:.0f} s, {result['torch_threads']} torch thread(s), load "
              f"average (1/5/15 min) {load_start[0]:.2f}/{load_start[1]:.2f}/{load_start[2]:.2f} "
              f"at start, {result['loadavg_end'][0]:.2f}/{result['loadavg_end'][1]:.2f}/"
              f"{result['loadavg_end'][2]:.2f} at end\n")
    (OUT / "results.md").write_text(table(timing, runs) + footer)
    (OUT / "results.json").write_text(json.dumps(result, indent=2))
    print(table(timing, runs) + footer)
    return result


def _threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    main()

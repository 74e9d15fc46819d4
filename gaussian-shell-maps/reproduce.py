"""`make reproduce-gaussian-shell-maps`: the paper's efficiency claim and a short GAN run, small.

A. Render time per image, splatting vs ray-marching the same shell Gaussians (claim.py).
B. FID/KID (stand-in features) of G_ema over 600 steps of configs/tiny.toml, 3 seeds, next to
   the real-vs-real floor. Writes runs/reproduce/{results.json, results.md, *.png}.
"""

from __future__ import annotations

import json
from pathlib import Path

from gaussian_shell_maps.claim import fid_curve, render_timing

OUT = Path("runs/reproduce")
SEEDS, STEPS, EVAL_EVERY = (0, 1, 2), 600, 60


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
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, key in zip(axes, ("fid", "kid")):
        for i, run in enumerate(runs):
            ax.plot([c["step"] for c in run["curve"]], [c[key] for c in run["curve"]], "o-",
                    ms=3, color=f"C{i}", label=f"seed {run['seed']}")
            ax.axhline(run["floor"][key], color=f"C{i}", ls=":", lw=1)
        ax.set(xlabel="training step", ylabel=f"{key.upper()} (stand-in features)")
    axes[0].legend(fontsize=7, title="dotted: real vs real", title_fontsize=7)
    fig.tight_layout()
    fig.savefig(OUT / "fid_kid.png", dpi=120)


def table(timing: list[dict], runs: list[dict]) -> str:
    lines = ["| N Gaussians | resolution | splat [s] | volume [s] | volume / splat |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['num_gaussians']} | {r['resolution']} | {r['splat_s']:.4f} | "
              f"{r['volume_s']:.4f} | {r['speedup']:.1f}x |" for r in timing]
    seeds = " | ".join(f"seed {r['seed']} FID | KID" for r in runs)
    lines += ["", f"| step | {seeds} |", "|---" * (1 + 2 * len(runs)) + "|"]
    for i, point in enumerate(runs[0]["curve"]):
        cells = " | ".join(f"{r['curve'][i]['fid']:.4f} | {r['curve'][i]['kid']:.5f}" for r in runs)
        lines.append(f"| {point['step']} | {cells} |")
    floor = " | ".join(f"{r['floor']['fid']:.4f} | {r['floor']['kid']:.5f}" for r in runs)
    lines.append(f"| real vs real | {floor} |")
    return "\n".join(lines) + "\n"


def main() -> dict:
    OUT.mkdir(parents=True, exist_ok=True)
    timing = render_timing()
    runs = [fid_curve(OUT / f"gan_seed{s}", "configs/tiny.toml", s, STEPS, EVAL_EVERY) for s in SEEDS]
    figures(timing, runs)
    (OUT / "results.md").write_text(table(timing, runs))
    result = {"render_timing": timing, "gan_runs": runs}
    (OUT / "results.json").write_text(json.dumps(result, indent=2))
    print(table(timing, runs))
    return result


if __name__ == "__main__":
    main()

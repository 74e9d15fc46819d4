"""Claim check (CPU, <= 15 min): plain HVAE vs. the RL-trained HVAE, same updates and seeds, on
scikit-learn's digits, with the released network (the paper's numbers came from it) and with
the intended one (every skip live).

    python reproduce.py [--steps N] [--seeds 0 1 2] [--archs released intended]
                        [--methods hvae rl] [--iw_samples K] [--eval_examples N]
                        [--no-run_figures] [--out runs/reproduce]
Writes <out>/results.{md,json} and <out>/reproduce.png.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from rl_hvae.config import parse_config
from rl_hvae.engine import evaluate, fit
from rl_hvae.runtime import ConfigError, cli, load_checkpoint

HERE = Path(__file__).resolve().parent
BASE = ["--eval_every", "0", "--save_every", "0"]


def _ms(values: list[float], digits: int = 2) -> str:
    return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}"


def table(results: dict[str, list[dict]]) -> str:
    runs = list(results)
    n_levels = len(next(iter(results.values()))[0]["levels"])
    lines = ["| metric | " + " | ".join(runs) + " |", "|---" * (len(runs) + 1) + "|"]
    lines.append("| **released metric**: SVC on z5 (lower latents sampled) | " + " | ".join(
        _ms([r["svm_top_released"] for r in results[m]]) for m in runs) + " |")
    lines.append("| NLL (nats, IW) | " + " | ".join(_ms([r["nll"] for r in results[m]])
                                                 for m in runs) + " |")
    for key, label in (("svm_accuracy", "our SVM (means passed up)"), ("active_units", "AU"),
                       ("mutual_information", "I(x; z)"), ("kl", "KL")):
        for lvl in range(n_levels):
            cells = [_ms([r["levels"][lvl][key] for r in results[m]],
                         1 if key == "active_units" else 2) for m in runs]
            units = results[runs[0]][0]["levels"][lvl]["units"]
            suffix = f" (of {units})" if key == "active_units" else ""
            lines.append(f"| {label} z{lvl + 1}{suffix} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure(results: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [("active_units", "active units / units"), ("mutual_information", "I(x; z_l) (nats)"),
            ("svm_accuracy", "our linear SVM accuracy")]
    n_levels = len(next(iter(results.values()))[0]["levels"])
    fig, axes = plt.subplots(1, 4, figsize=(18, 3.8))
    width = 0.8 / len(results)
    for ax, (key, label) in zip(axes, keys):
        for j, (run, rows) in enumerate(results.items()):
            vals = np.array([[r["levels"][lvl][key] / (r["levels"][lvl]["units"]
                             if key == "active_units" else 1) for lvl in range(n_levels)]
                             for r in rows])
            ax.bar(np.arange(n_levels) + j * width, vals.mean(0), width, yerr=vals.std(0),
                   label=run, capsize=2)
        ax.set_xticks(np.arange(n_levels) + width * (len(results) - 1) / 2,
                      [f"z{i + 1}" for i in range(n_levels)])
        ax.set_title(label)
    names = list(results)
    top = [[r["svm_top_released"] for r in results[m]] for m in names]
    axes[3].bar(range(len(names)), [np.mean(v) for v in top], yerr=[np.std(v) for v in top],
                capsize=3, color="tab:gray")
    axes[3].set_xticks(range(len(names)), names, rotation=20, fontsize=7)
    axes[3].set_title("released metric: SVC on z5")
    axes[0].legend(fontsize=7)
    fig.suptitle("digits, same updates / seeds (mean ± std over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _done(run: Path, steps: int) -> bool:
    last = run / "ckpt/last.pt"
    return last.is_file() and load_checkpoint(last)["step"] >= steps


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)  # 500 does not fit 15 min (README)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--archs", nargs="+", default=["released", "intended"])
    parser.add_argument("--methods", nargs="+", default=["hvae", "rl"])
    parser.add_argument("--iw_samples", type=int, default=100)
    parser.add_argument("--run_figures", action=argparse.BooleanOptionalAction, default=True,
                        help="each run's eval figures too (--no-run_figures: only reproduce.png)")
    parser.add_argument("--eval_examples", type=int, default=0,
                        help="evaluate on the first N images of each split (0: all)")
    # 1 (the tiny preset) fits the 15-minute CPU budget. The released inference path is the same
    # chain z1 -> ... -> z5 for any count; its 4 live generative skips need 3 (the paper's).
    parser.add_argument("--blocks_per_stage", type=int, default=1)
    parser.add_argument("--out", default="runs/reproduce")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.iw_samples < 1 or args.eval_examples < 0:
        raise ConfigError("--steps and --iw_samples must be >= 1, --eval_examples >= 0",
                          "reproduce.py --help")
    out = Path(args.out)
    results: dict[str, list[dict]] = {}
    for arch in args.archs:
        for method in args.methods:
            name = f"{arch} {method}"
            results[name] = []
            for seed in args.seeds:
                run = out / f"{arch}_{method}_s{seed}"
                cfg = parse_config(["--config", str(HERE / "configs/tiny.toml"), *BASE,
                                    "--model_blocks_per_stage", str(args.blocks_per_stage),
                                    "--arch_skips", arch, "--method", method,
                                    "--seed", str(seed), "--steps", str(args.steps),
                                    "--out_dir", str(run)])
                if not _done(run, args.steps):
                    fit(cfg)
                results[name].append(evaluate(run / "ckpt/last.pt", iw_samples=args.iw_samples,
                                              max_examples=args.eval_examples,
                                              figures=args.run_figures))
    md = table(results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(md + "\n")
    (out / "results.json").write_text(json.dumps(results, indent=2))
    figure(results, out / "reproduce.png")
    print(md)
    print(f"wrote {out / 'results.md'} and {out / 'reproduce.png'}")
    return results


if __name__ == "__main__":
    cli(main)

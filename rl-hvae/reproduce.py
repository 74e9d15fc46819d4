"""Claim check (CPU, <= 15 min): plain HVAE vs. the RL-trained HVAE (and the free-bits
baseline) with the same architecture, updates and seeds on scikit-learn's digits.

    python reproduce.py [--steps 1000] [--seeds 0 1 2] [--methods hvae rl free_bits]
Writes runs/reproduce/results.{md,json} and runs/reproduce/reproduce.png.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from rl_hvae.config import parse_config
from rl_hvae.engine import evaluate, fit

HERE = Path(__file__).resolve().parent


def _ms(values: list[float]) -> str:
    return f"{np.mean(values):.2f} ± {np.std(values):.2f}"


def table(results: dict[str, list[dict]]) -> str:
    methods = list(results)
    n_levels = len(next(iter(results.values()))[0]["levels"])
    lines = ["| metric | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    lines.append("| NLL (nats, IW) | " + " | ".join(_ms([r["nll"] for r in results[m]])
                                                 for m in methods) + " |")
    for key, label in (("active_units", "AU"), ("mutual_information", "MI"),
                       ("svm_accuracy", "SVM acc"), ("kl", "KL")):
        for lvl in range(n_levels):
            cells = [_ms([r["levels"][lvl][key] for r in results[m]]) for m in methods]
            units = results[methods[0]][0]["levels"][lvl]["units"]
            suffix = f" (of {units})" if key == "active_units" else ""
            lines.append(f"| {label} z{lvl + 1}{suffix} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure(results: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [("active_units", "active units / units"), ("mutual_information", "I(x; z_l) (nats)"),
            ("svm_accuracy", "linear SVM accuracy")]
    n_levels = len(next(iter(results.values()))[0]["levels"])
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    width = 0.8 / len(results)
    for ax, (key, label) in zip(axes, keys):
        for j, (method, runs) in enumerate(results.items()):
            vals = np.array([[r["levels"][lvl][key] / (r["levels"][lvl]["units"]
                             if key == "active_units" else 1) for lvl in range(n_levels)]
                             for r in runs])
            ax.bar(np.arange(n_levels) + j * width, vals.mean(0), width, yerr=vals.std(0),
                   label=method, capsize=2)
        ax.set_xticks(np.arange(n_levels) + width * (len(results) - 1) / 2,
                      [f"z{i + 1}" for i in range(n_levels)])
        ax.set_title(label)
    axes[0].legend()
    fig.suptitle("digits, same architecture / updates / seeds (mean ± std over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=["hvae", "rl", "free_bits"])
    parser.add_argument("--iw_samples", type=int, default=100)
    parser.add_argument("--out", default="runs/reproduce")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    out = Path(args.out)
    results: dict[str, list[dict]] = {m: [] for m in args.methods}
    extra = {"free_bits": ["--free_nats", "2", "--free_nats_steps", str(args.steps),
                           "--kl_warmup_steps", str(args.steps // 4)]}
    for method in args.methods:
        for seed in args.seeds:
            run = out / f"{method}_s{seed}"
            cfg = parse_config(["--config", str(HERE / "configs/tiny.toml"), "--method", method,
                                "--seed", str(seed), "--steps", str(args.steps),
                                "--eval_every", "0", "--save_every", "0", "--out_dir", str(run),
                                *extra.get(method, [])])
            if not (run / "ckpt/last.pt").is_file() or fit_needed(run, args.steps):
                fit(cfg)
            results[method].append(evaluate(run / "ckpt/last.pt", iw_samples=args.iw_samples,
                                            max_examples=0, figures=True))
    md = table(results)
    (out / "results.md").write_text(md + "\n")
    (out / "results.json").write_text(json.dumps(results, indent=2))
    figure(results, out / "reproduce.png")
    print(md)
    print(f"wrote {out / 'results.md'} and {out / 'reproduce.png'}")
    return results


def fit_needed(run: Path, steps: int) -> bool:
    import torch

    return torch.load(run / "ckpt/last.pt", weights_only=True)["step"] < steps


if __name__ == "__main__":
    main()

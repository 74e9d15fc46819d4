"""Figures: distance curves d(c) with the separating descriptions, and correlation bars."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def plot_curves(result: dict, path: str | Path) -> None:
    """Example d(c) curves (one pair per ground-truth level), separation point annotated, and
    the mean curve per level."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    ax = axes[0]
    for ex in result["examples"]:
        line, = ax.plot(ex["complexities"], ex["curve"], marker="o",
                        label=f"GT level {ex['level']}  AUC={ex['auc']:.3g}")
        sep = ex["separation_complexity"]
        if sep is not None and ex["explanation"]:
            a, b = ex["explanation"]["separating_descriptions"]
            ax.annotate(f"'{a}'\nvs '{b}'", (sep, ex["curve"][sep]), fontsize=6,
                        color=line.get_color(), xytext=(4, 4), textcoords="offset points")
    ax.set(xlabel="complexity c (description tokens)", ylabel="d(c) [nats]",
           title=f"{result['modality']}: example pairs (annotated: separating descriptions)")
    ax.legend(fontsize=7)
    ax = axes[1]
    for level, curve in sorted(result["curves_by_level"].items(), key=lambda kv: int(kv[0])):
        ax.plot(range(len(curve)), curve, marker=".", label=f"GT level {level}")
    ax.set(xlabel="complexity c", ylabel="mean d(c)", title="mean curve per ground-truth level")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_correlations(results: dict[str, dict], path: str | Path, key: str = "spearman") -> None:
    """Bar chart of `key` per method, one panel per modality."""
    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4), squeeze=False)
    for ax, (name, res) in zip(axes[0], results.items()):
        methods = list(res["table"])
        vals = [res["table"][m][key] for m in methods]
        ax.bar(range(len(methods)), vals, color=["C3" if m.startswith("ccdae") else "C0"
                                                 for m in methods])
        ax.set_xticks(range(len(methods)), methods, rotation=30, ha="right", fontsize=8)
        ax.set(title=f"{name}: {key} vs ground truth", ylim=(-1, 1))
        ax.axhline(0, color="k", lw=0.5)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

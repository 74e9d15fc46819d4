"""Figures: accuracy per domain per method (bar charts)."""

from __future__ import annotations

from pathlib import Path


def plot_domain_accuracies(results: dict[str, dict[str, float]], domains: list[str],
                           held_out: str | None, path: str | Path, title: str = "") -> None:
    """Grouped bars: one group per domain, one bar per method (`results[method]["acc_<d>"]`).
    The held-out (OOD) domain is marked with '*'."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(results)
    width = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(3.6 + 1.4 * len(domains), 3.2))
    xs = np.arange(len(domains))
    for k, name in enumerate(names):
        vals = [results[name].get(f"acc_{d}", np.nan) for d in domains]
        ax.bar(xs + (k - (len(names) - 1) / 2) * width, vals, width, label=name)
    ax.set_xticks(xs, [d + (" *" if d == held_out else "") for d in domains])
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.set_title(title or (f"held-out domain: {held_out} (*)" if held_out else ""))
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_align_loss(curves: dict[str, dict[int, float]], path: str | Path) -> None:
    """Align-stage loss against step, one line per run group (`curves[name][step] = loss`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.2))
    for name, curve in curves.items():
        ax.plot(list(curve), list(curve.values()), marker="o", ms=3, label=name)
    ax.set_xlabel("Align step")
    ax.set_ylabel("align loss (50-step mean)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

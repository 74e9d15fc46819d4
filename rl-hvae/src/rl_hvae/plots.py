"""Figures: per-level KL / active units / MI bars, skip-path reconstructions and samples."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from .distributions import likelihood_mean  # noqa: E402
from .model import HierarchicalVAE  # noqa: E402


def plot_levels(levels: list[dict], path: Path, title: str = "") -> None:
    """Bar charts of KL, active-unit fraction, I(x; z_l) and SVM accuracy per level."""
    names = [f"z{lv['level']}" for lv in levels]
    panels = [("KL (nats)", [lv["kl"] for lv in levels]),
              ("active units / units", [lv["active_units"] / lv["units"] for lv in levels]),
              ("I(x; z) (nats)", [lv["mutual_information"] for lv in levels]),
              ("SVM accuracy", [lv["svm_accuracy"] for lv in levels])]
    fig, axes = plt.subplots(1, 4, figsize=(13, 3))
    for ax, (label, values) in zip(axes, panels):
        ax.bar(names, values, color="tab:blue")
        ax.set_title(label, fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


@torch.no_grad()
def plot_skip_reconstructions(model: HierarchicalVAE, x: torch.Tensor, path: Path) -> None:
    """Rows: input, then reconstructions from z_{n+1..L} (skip path, n = 0..L-1), then samples."""
    kind = model.arch.likelihood
    posteriors, samples = model.infer(x, use_mode=True)
    rows = [x]
    for n in range(model.n_levels):
        z_in = [None if lvl < n else z for lvl, z in enumerate(samples)]
        rows.append(likelihood_mean(kind, model.generate(z_in, x.shape[0])[0]))
    rows.append(likelihood_mean(kind, model.sample(x.shape[0], use_mode=True)))
    labels = ["input"] + [f"from z{n + 1}" for n in range(model.n_levels)] + ["prior"]
    fig, axes = plt.subplots(len(rows), x.shape[0], figsize=(x.shape[0] * 0.9, len(rows) * 0.95))
    for r, (row, label) in enumerate(zip(rows, labels)):
        for c in range(x.shape[0]):
            ax = axes[r, c]
            img = row[c].cpu().permute(1, 2, 0).squeeze(-1).clamp(0, 1)
            ax.imshow(img, cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(label, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

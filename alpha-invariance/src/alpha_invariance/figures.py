"""PNG figures: renders and depth per view, PSNR-vs-k curves per model family."""

from __future__ import annotations

from pathlib import Path

import torch


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_view_figure(path: str | Path, views: list, renders: list[dict], title: str = "") -> None:
    """Rows = views; columns = GT rgb, rendered rgb, GT depth (if any), rendered depth."""
    plt = _plt()
    cols = 4
    fig, axes = plt.subplots(len(views), cols, figsize=(2.2 * cols, 2.2 * len(views)),
                             squeeze=False)
    for r, (view, out) in enumerate(zip(views, renders)):
        gt = view.rgb.view(view.height, view.width, 3)
        panels = [(gt, "GT"), (out["rgb"].clamp(0, 1), "render")]
        gt_d = None if view.depth is None else view.depth.view(view.height, view.width)
        dmax = float(torch.nan_to_num(out["depth"]).max()) or 1.0
        panels.append((gt_d if gt_d is not None else torch.zeros(view.height, view.width),
                       "GT depth" if gt_d is not None else "(no GT depth)"))
        panels.append((out["depth"] * (out["acc"] > 0.5), "depth (acc>0.5)"))
        for c, (img, name) in enumerate(panels):
            ax = axes[r, c]
            if img.dim() == 3:
                ax.imshow(img.numpy())
            else:
                ax.imshow(img.numpy(), cmap="viridis", vmin=0, vmax=dmax)
            ax.set_title(name, fontsize=8)
            ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_psnr_vs_k(path: str | Path, table: dict) -> None:
    """table[family][variant][k] = (mean PSNR, std, seeds); one panel per family, log-x axis,
    error bars = std over seeds."""
    plt = _plt()
    fams = list(table)
    fig, axes = plt.subplots(1, len(fams), figsize=(3.2 * len(fams), 3.0), squeeze=False)
    for ax, fam in zip(axes[0], fams):
        for variant, series in table[fam].items():
            ks = sorted(series)
            ax.errorbar(ks, [series[k][0] for k in ks], yerr=[series[k][1] for k in ks],
                        marker="o", capsize=3, label=variant)
        ax.set_xscale("log")
        ax.set_title(fam, fontsize=9)
        ax.set_xlabel("scene scale k")
        ax.set_ylabel("test PSNR (dB)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_renders_by_k(path: str | Path, rows: list[tuple[str, list[torch.Tensor]]],
                      ks: list[float]) -> None:
    """Grid of renders: rows = (label, [image at each k, or None]) and columns = k."""
    plt = _plt()
    fig, axes = plt.subplots(len(rows), len(ks), figsize=(1.9 * len(ks), 1.9 * len(rows)),
                             squeeze=False)
    for r, (label, imgs) in enumerate(rows):
        for c, img in enumerate(imgs):
            ax = axes[r, c]
            if img is not None:
                ax.imshow(img.clamp(0, 1).numpy() if img.dim() == 3 else img.numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"k={ks[c]:g}", fontsize=8)
            if c == 0:
                ax.set_ylabel(label, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

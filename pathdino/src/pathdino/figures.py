"""Figures: last-layer CLS attention maps, FPS selection on the thumbnail, rotation consistency."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from einops import rearrange

from .augment import eval_transform, rotate_center_crop


def plot_attention(backbone, images: np.ndarray, size: int, path: Path) -> None:
    """Per image: the input crop, then CLS -> patch attention of every head of the last block."""
    x = torch.stack([rotate_center_crop(torch.from_numpy(im).permute(2, 0, 1), 0.0, size)
                     for im in images])  # [n, 3, size, size] uint8
    param = next(backbone.parameters())
    attn = backbone.last_self_attention(eval_transform(x, size).to(param.device)).cpu()
    side = size // backbone.cfg.patch_size
    maps = rearrange(attn[:, :, 0, 1:], "n h (y x) -> n h y x", y=side)  # [n, heads, s, s]
    n, heads = maps.shape[:2]
    fig, axes = plt.subplots(n, heads + 1, figsize=(1.6 * (heads + 1), 1.6 * n), squeeze=False)
    for i in range(n):
        axes[i, 0].imshow(x[i].permute(1, 2, 0).numpy())
        for h in range(heads):
            axes[i, h + 1].imshow(maps[i, h].numpy(), cmap="inferno")
            if i == 0:
                axes[i, h + 1].set_title(f"head {h}", fontsize=7)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle("last-block CLS attention", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_fps(fps, exhaustive, path: Path) -> None:
    """Thumbnail with tissue mask, FPS patches (left) and exhaustive tiles (right)."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.6))
    for ax, sel, title, colour in ((axes[0], fps, "FPS", "lime"),
                                   (axes[1], exhaustive, "exhaustive tiling", "cyan")):
        ax.imshow(sel.thumbnail)
        ax.contour(sel.mask, levels=[0.5], colors="yellow", linewidths=0.6)
        side = sel.patch_size / sel.thumb_scale
        for x, y in sel.coords:
            ax.add_patch(plt.Rectangle((x / sel.thumb_scale, y / sel.thumb_scale), side, side,
                                       fill=False, edgecolor=colour, linewidth=1.0))
        ax.set_title(f"{title}: {len(sel.coords)} patches, {sel.seconds * 1e3:.0f} ms selection",
                     fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_rotation(curves: dict[str, np.ndarray], path: Path,
                  labels: dict[str, str] | None = None) -> None:
    """curves[name] = [2, A] (angles, mean cosine similarity) -> line plot."""
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for name, (angles, sims) in curves.items():
        ax.plot(angles, sims, marker="o", ms=3, label=(labels or {}).get(name, name))
    ax.set_xlabel("rotation angle (degrees)")
    ax.set_ylabel("centred cos(f(x), f(R x))")
    ax.set_ylim(top=1.01)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

"""Figures: images with body boxes (green), face boxes (red) and pair links (yellow lines)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def draw_detections(records: list, preds: list[dict], path: str | Path,
                    min_score: float = 0.3) -> Path | None:
    """Draw ground truth (thin, dashed) and predicted pairs with score > `min_score`."""
    if not records:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .data import load_image

    cols = min(len(records), 4)
    rows = int(np.ceil(len(records) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, rec, pred in zip(axes.flat, records, preds):
        ax.imshow(load_image(rec))
        for body, face, has_face in zip(rec.bodies, rec.faces, rec.has_face):
            _box(ax, body, "white", 0.8, "--")
            if has_face:
                _box(ax, face, "white", 0.8, "--")
        for row in pred["body"][pred["body"][:, 4] > min_score]:
            _box(ax, row[:4], "lime", 1.5)
        for row in pred["pairs"][pred["pairs"][:, 9] > min_score]:
            _box(ax, row[5:9], "red", 1.5)
            (bx, by), (fx, fy) = _centre(row[:4]), _centre(row[5:9])
            ax.plot([bx, fx], [by, fy], color="yellow", lw=1.2)
        ax.set_title(f"{rec.image_id[-24:]}  pairs>{min_score}: "
                     f"{int((pred['pairs'][:, 9] > min_score).sum())}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def _box(ax, box, color: str, lw: float, ls: str = "-") -> None:
    import matplotlib.pyplot as plt

    ax.add_patch(plt.Rectangle((box[0], box[1]), box[2] - box[0], box[3] - box[1], fill=False,
                               edgecolor=color, lw=lw, ls=ls))


def _centre(box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2

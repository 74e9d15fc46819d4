"""Figures: recovered scene views, iris texture, pose refinement curve."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402


def plot_views(views: list[dict], path: Path) -> None:
    fig, axes = plt.subplots(2, len(views), figsize=(3 * len(views), 6), squeeze=False)
    for i, v in enumerate(views):
        for row, key in enumerate(("true", "pred")):
            axes[row, i].imshow(v[key].numpy())
            axes[row, i].set_title(
                f"view {i}: {'ground truth' if key == 'true' else 'from eyes'}", fontsize=8
            )
            axes[row, i].axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_iris(true: torch.Tensor, pred: torch.Tensor, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(6, 3))
    for ax, img, title in zip(axes, (true, pred), ("true iris", "learned iris texture")):
        ax.imshow((img / img.max().clamp(min=1e-6)).clamp(0, 1).numpy())
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_pose_curve(metrics_path: Path, path: Path) -> None:
    records = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    records = [r for r in records if "pose_axis_err_deg" in r]
    if not records:
        return
    fig, axes = plt.subplots(1, 3, figsize=(12, 3))
    steps = [r["step"] for r in records]
    for ax, key, label in (
        (axes[0], "pose_axis_err_deg", "axis error (deg)"),
        (axes[1], "pose_apex_err_mm", "apex error (mm)"),
        (axes[2], "recon", "photometric loss"),
    ):
        ax.plot(steps, [r[key] for r in records])
        ax.set_xlabel("step")
        ax.set_title(label, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

"""Figures: mouth opening vs audio energy, rendered frames (PNG) and an animated GIF.

Shapes: T frames, V vertices, K samples.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .head import mouth_opening, render_mesh


def plot_mouth_vs_audio(path: Path, energy: torch.Tensor, gt: torch.Tensor,
                        samples: torch.Tensor, fps: int) -> None:
    """energy [T]; gt [T] and samples [K, T] mouth openings."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.arange(len(energy)) / fps
    fig, ax = plt.subplots(figsize=(8, 3))
    ax2 = ax.twinx()
    ax2.fill_between(t, 0, energy.numpy(), color="0.85", label="audio RMS")
    ax2.set_yticks([])
    ax.set_zorder(ax2.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.plot(t, gt.numpy(), "k", lw=2, label="ground truth")
    for k, s in enumerate(samples):
        ax.plot(t, s.numpy(), lw=1, alpha=0.8, label=f"sample {k}")
    ax.set_xlabel("time [s]")
    ax.set_ylabel("mouth opening")
    ax.legend(loc="upper right", fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_frames(path: Path, vertices: torch.Tensor, faces: torch.Tensor, every: int,
                gt: torch.Tensor | None = None, colors: np.ndarray | None = None) -> list:
    """A strip of rendered frames (generated row, ground-truth row if given); returns frames."""
    from PIL import Image

    idx = list(range(0, len(vertices), every))[:8]
    rows = [[render_mesh(vertices[i].numpy(), faces.numpy(), colors=colors) for i in idx]]
    if gt is not None:
        rows.append([render_mesh(gt[i].numpy(), faces.numpy(), colors=colors) for i in idx])
    Image.fromarray(np.concatenate([np.concatenate(r, 1) for r in rows], 0)).save(path)
    return rows[0]


def save_gif(path: Path, vertices: torch.Tensor, faces: torch.Tensor, fps: int,
             max_frames: int = 50, colors: np.ndarray | None = None) -> None:
    from PIL import Image

    frames = [Image.fromarray(render_mesh(v.numpy(), faces.numpy(), size=128, colors=colors))
              for v in vertices[:max_frames]]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=int(1000 / fps),
                   loop=0)


def save_obj(path: Path, vertices: torch.Tensor, faces: torch.Tensor) -> None:
    """Wavefront OBJ of one mesh; vertices [V, 3], faces [F, 3] (0-based)."""
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in vertices.tolist()]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces.tolist()]
    Path(path).write_text("\n".join(lines) + "\n")


def save_figures(out_dir: Path, energy, gt_vertices, sample_vertices, faces, fps: int,
                 mouth_pair, render: bool = True, colors: np.ndarray | None = None) -> None:
    """All eval figures for one clip; vertices gt [T, V, 3], samples [K, T, V, 3]."""
    plot_mouth_vs_audio(out_dir / "mouth_vs_audio.png", energy,
                        mouth_opening(gt_vertices, mouth_pair),
                        mouth_opening(sample_vertices, mouth_pair), fps)
    mid = len(gt_vertices) // 2
    save_obj(out_dir / f"sample0_frame{mid:03d}.obj", sample_vertices[0][mid], faces)
    if render:
        save_frames(out_dir / "frames.png", sample_vertices[0], faces, every=max(1, fps // 5),
                    gt=gt_vertices, colors=colors)
        save_gif(out_dir / "sequence.gif", sample_vertices[0], faces, fps, colors=colors)

"""eval.py's work: FID/KID, PCK, multi-view consistency, render speed, figures, .ply export.

Shapes: B batch, H resolution, J joints.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from . import metrics as M
from .cameras import project_points
from .config import Config
from .render import render_gaussians, resolve_backend
from .tools import export_ply, front_label, render_identity, repose_labels, turntable_labels


def eval_backend(cfg: Config, gen) -> str:
    """The renderer for evaluation: gsplat's CUDA rasteriser on a GPU (auto), else torch."""
    return resolve_backend(cfg.render_backend, next(gen.parameters()).device)


@torch.no_grad()
def generate(gen, labels: torch.Tensor, resolution: int, seed: int = 123, chunk: int = 8,
             truncation_psi: float = 1.0, backend: str = "torch") -> torch.Tensor:
    """Fakes [B, 3, H, H] in [-1, 1] for the given conditioning labels (noise off)."""
    g = torch.Generator().manual_seed(seed)
    dev = next(gen.parameters()).device
    out = []
    for i in range(0, len(labels), chunk):
        lab = labels[i:i + chunk].to(dev)
        z = torch.randn(len(lab), gen.cfg.z_dim, generator=g).to(dev)
        out.append(gen(z, lab, resolution, truncation_psi=truncation_psi, noise=False,
                       backend=backend)["image"].cpu())
    return torch.cat(out)


def _real_and_labels(data, n: int, seed: int = 0):
    idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n]
    items = [data[int(i)] for i in idx]
    return torch.stack([x for x, _ in items]), torch.stack([y for _, y in items])


def quick_quality(cfg: Config, gen, data, device=None, n: int | None = None) -> dict[str, float]:
    """FID/KID of G against the training images (with the configured feature extractor); on
    the synthetic mannequins also the pose-conditioned garment measures (`part_measures`)."""
    n = min(n or cfg.eval_num_images, len(data))
    real, labels = _real_and_labels(data, n)
    fake = generate(gen, labels, cfg.data_resolution, backend=eval_backend(cfg, gen))
    extractor = M.feature_extractor(cfg.inception_path)
    fr, ff = extractor(real), extractor(fake)
    out = {"fid": M.fid(fr, ff), "kid": M.kid(fr, ff, subset_size=min(100, n))}
    if hasattr(data, "render_parts"):
        out.update(part_measures(data, real, labels, fake, labels, cfg.eval_garment_steps))
    return out


def part_measures(data, real: torch.Tensor, real_labels: torch.Tensor, fake: torch.Tensor,
                  fake_labels: torch.Tensor, garment_steps: int = 400) -> dict[str, float]:
    """Garment-layout agreement of fakes with their conditioning bodies (metrics.part_statistics):
    mean part R^2, silhouette IoU, the Frechet distance of per-part colour statistics between
    real and fake images (`part_fd`) and of GarmentNet features (`garment_fd`)."""
    stats_f = M.part_statistics(fake, data.render_parts(fake_labels))
    stats_r = M.part_statistics(real, data.render_parts(real_labels))
    net = garment_net(data, steps=garment_steps)
    with torch.no_grad():
        garment_fd = M.fid(net.features(real), net.features(fake))
    return {"part_r2": float(stats_f["r2"].mean()), "silhouette_iou": float(stats_f["iou"].mean()),
            "part_fd": M.fid(stats_r["feats"], stats_f["feats"]), "garment_fd": garment_fd}


def garment_net(data, n: int = 256, steps: int = 400) -> M.GarmentNet:
    """The GarmentNet of a synthetic dataset, trained once on its images (cached on it)."""
    if getattr(data, "_garment_net", None) is None:
        real, labels = _real_and_labels(data, min(n, len(data)), seed=3)
        targets = M.part_statistics(real, data.render_parts(labels))["feats"]
        data._garment_net = M.train_garment_net(real, targets, steps=steps)
    return data._garment_net


@torch.no_grad()
def joints_2d(gen, labels: torch.Tensor, resolution: int) -> torch.Tensor:
    posed = gen.pose(labels.to(next(gen.parameters()).device), resolution)
    return project_points(posed["joints"], posed["viewmats"], posed["Ks"]).cpu()


def pose_accuracy(cfg: Config, gen, data, n: int) -> dict[str, float]:
    """PCK@0.1 (of the 2D joint-box height) of a stand-in detector on fakes vs the conditioning
    joints; the same detector on held-out real images gives the reference ceiling."""
    real, labels = _real_and_labels(data, min(len(data), 4 * n), seed=1)
    gt = joints_2d(gen, labels, cfg.data_resolution)
    n_train = max(len(real) - n, len(real) // 2)
    with torch.enable_grad():
        det = M.train_keypoint_net(real[:n_train], gt[:n_train], steps=cfg.eval_keypoint_steps)
    box_h = (gt[..., 1].amax(1) - gt[..., 1].amin(1))[:, None].expand(-1, gt.shape[1])
    fake = generate(gen, labels[n_train:], cfg.data_resolution, backend=eval_backend(cfg, gen))
    with torch.no_grad():
        pred_fake, pred_real = det(fake), det(real[n_train:])
    err_f = (pred_fake - gt[n_train:]).norm(dim=-1) <= 0.1 * box_h[n_train:]
    err_r = (pred_real - gt[n_train:]).norm(dim=-1) <= 0.1 * box_h[n_train:]
    return {"pck_fake": float(err_f.float().mean()), "pck_real_heldout": float(err_r.float().mean()),
            "pck_detector": "standin-keypointnet"}


@torch.no_grad()
def multiview_consistency(cfg: Config, gen, base_label: torch.Tensor | None = None,
                          identities: int = 4, delta_deg: float = 30.0) -> float:
    """Mean reprojection PSNR between views yaw and yaw + delta of the same generated human
    (the camera of `base_label` [107], default a frontal label, orbited about the body)."""
    res, dev = cfg.data_resolution, next(gen.parameters()).device
    base_label = front_label() if base_label is None else base_label
    scores = []
    for i in range(identities):
        z = torch.randn(1, gen.cfg.z_dim, generator=torch.Generator().manual_seed(i)).to(dev)
        labels = turntable_labels(base_label.cpu(), round(360 / delta_deg))[:2].to(dev)
        out = gen(z.expand(2, -1), labels, res, noise=False, backend=eval_backend(cfg, gen))
        posed = gen.pose(labels, res)
        depth_b = out["depth"][1] / out["alpha"][1].clamp(min=1e-6)
        scores.append(M.reprojection_consistency(
            out["image"][0].cpu(), out["depth"][0].cpu(), out["alpha"][0].cpu(), out["image"][1].cpu(),
            depth_b.cpu(), posed["viewmats"][0].cpu(), posed["viewmats"][1].cpu(), posed["Ks"][0].cpu()))
    valid = [s for s in scores if math.isfinite(s)]
    return float(sum(valid) / len(valid)) if valid else float("nan")


@torch.no_grad()
def render_speed(gen, resolution: int = 512, repeats: int = 3, backend: str = "torch") -> dict:
    """Renders/s of the splatting step alone at resolution^2, and of the full generator."""
    dev = next(gen.parameters()).device
    label = front_label().to(dev)[None]
    z = torch.randn(1, gen.cfg.z_dim, device=dev)
    out = gen(z, label, 64, noise=False, backend=backend)
    posed = gen.pose(label, resolution)
    g = out["gaussians"]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        render_gaussians(**g, viewmats=posed["viewmats"], Ks=posed["Ks"], width=resolution,
                         height=resolution, background=torch.ones(1, 3, device=dev), backend=backend)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    gen(z, label, resolution, noise=False, backend=backend)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    full = time.perf_counter() - t0
    return {f"renders_per_s_{resolution}": 1.0 / min(times), f"generator_s_{resolution}": full,
            "num_gaussians": gen.num_gaussians, "render_backend": backend, "device": dev.type}


def save_grid(images: torch.Tensor, path: Path, cols: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = math.ceil(len(images) / cols)
    pad = torch.ones(rows * cols - len(images), *images.shape[1:])
    imgs = torch.cat([images.cpu(), pad * 1.0])
    grid = torch.cat([torch.cat(list(imgs[r * cols:(r + 1) * cols]), 2) for r in range(rows)], 1)
    plt.imsave(path, ((grid.permute(1, 2, 0) + 1) / 2).clamp(0, 1).numpy())


def run_evaluation(cfg: Config, gen, data, out: Path, num_images: int | None = None,
                   pose_seq: torch.Tensor | None = None, quick: bool = False) -> dict:
    """Metrics and figures; the figures' cameras and bodies come from a dataset label, so they
    work in either label convention (ours, or the official camera-on--z / flipped body)."""
    n = min(num_images or cfg.eval_num_images, len(data))
    backend = eval_backend(cfg, gen)
    _, labels = _real_and_labels(data, 8, seed=2)
    base = labels[0]  # the figures' camera, pose and shape
    result = {"feature_extractor": M.feature_extractor(cfg.inception_path).name,
              "num_images": n, **quick_quality(cfg, gen, data, n=n)}
    result.update(pose_accuracy(cfg, gen, data, n=max(8, n // 4)))
    # quick: fewer views and frames (the CPU smoke run at 512 px with 100k Gaussians)
    frames, poses_n = (4, 3) if quick else (8, 6)
    result["multiview_psnr"] = multiview_consistency(cfg, gen, base, identities=1 if quick else 4)
    result.update(render_speed(gen, 512, repeats=1 if quick else 2, backend=backend))
    res, dev = cfg.data_resolution, next(gen.parameters()).device
    save_grid(generate(gen, labels, res, backend=backend), out / "samples.png", cols=8)
    z = torch.randn(gen.cfg.z_dim, generator=torch.Generator().manual_seed(7)).to(dev)
    save_grid(render_identity(gen, z, turntable_labels(base, frames), res, backend=backend),
              out / "turntable.png", frames)
    poses = base[28:97].expand(poses_n, -1).clone()
    t = torch.linspace(0, 1, poses_n)
    poses[:, 15 * 3 + 2], poses[:, 16 * 3 + 2] = -1.3 * t, 1.3 * t  # lower the arms
    poses[:, 0], poses[:, 3] = -0.5 * t, 0.5 * t  # hips (joints 1, 2) swing
    save_grid(render_identity(gen, z, repose_labels(base, poses), res, backend=backend),
              out / "repose.png", poses_n)
    figures = ["samples.png", "turntable.png", "repose.png", "sample_0.ply"]
    if pose_seq is not None:  # official gen_novel_pose.py: the label's camera, a new sequence
        save_grid(render_identity(gen, z, repose_labels(base, pose_seq), res, backend=backend),
                  out / "novel_pose.png", min(len(pose_seq), 8))
        figures.append("novel_pose.png")
    with torch.no_grad():
        g = gen(z[None], base.to(dev)[None], res, noise=False, backend=backend)["gaussians"]
    export_ply(out / "sample_0.ply", *(g[k][0] for k in ("means", "quats", "scales", "opacities",
                                                          "colors")))
    result["figures"] = figures
    return result

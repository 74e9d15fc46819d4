"""Measurements of a trained model: reconstruction of the cornea pixels, novel views of the
reflected scene against the synthetic ground truth (PSNR, SSIM, LPIPS), cornea pose errors and
the iris texture error. Everything is created on the model's device."""

from __future__ import annotations

import torch

from .cornea import apex_positions, axis_angle_error_deg, iris_texture_coords, so3_exp
from .data import Capture, camera_to_world
from .model import EyeRadiance
from .scene import Scene, iris_texture, look_at_dirs, trace_scene


@torch.no_grad()
def pose_errors(model: EyeRadiance, gt: dict | None, frame_ids: list[int]) -> dict[str, float]:
    """Mean apex error (mm) and optical-axis error (deg) of the official initial pose and of the
    refined pose against gt.json (entries `frame_ids` of the transforms file). The truth is
    built on the model's device."""
    if gt is None:
        return {}
    device = model.depth_mm.device
    apex_true = torch.tensor(gt["apex"], dtype=torch.float32, device=device)[frame_ids]
    rot_true = torch.tensor(gt["rotation"], dtype=torch.float32, device=device)[frame_ids]
    eyes = torch.arange(len(frame_ids), device=device)
    apex, rot = model.apex_and_rotation(eyes)
    size = torch.tensor([float(model.width), float(model.height)], device=device)
    apex0 = apex_positions(model.centre_px, model.depth_mm, model.fx, model.fy, size[0], size[1],
                           torch.zeros_like(model.depth_mm), torch.zeros_like(model.centre_px))
    rot0 = so3_exp(model.poses.rotation_init)
    return {
        "pose_apex_err_init_mm": (apex0 - apex_true).norm(dim=-1).mean().item(),
        "pose_axis_err_init_deg": axis_angle_error_deg(rot0, rot_true).mean().item(),
        "pose_apex_err_mm": (apex - apex_true).norm(dim=-1).mean().item(),
        "pose_axis_err_deg": axis_angle_error_deg(rot, rot_true).mean().item(),
    }


@torch.no_grad()
def reconstruction(model: EyeRadiance, capture: Capture, chunk: int = 4096,
                   max_rays: int = 0) -> dict[str, float]:
    """PSNR of the rendered cornea pixels (reflection + iris) against the capture, over the rays
    that hit the refined cap, and the hit fraction; `max_rays` > 0: an evenly strided subset."""
    sq, count, hits = 0.0, 0, 0
    every = max(1, len(capture) // max_rays) if max_rays else 1
    subset = torch.arange(0, len(capture), every, device=capture.eye.device)
    for idx in subset.split(chunk):
        out = model(capture.camera_dirs(idx), capture.eye[idx])
        target = capture.rgb[idx][out["hit"]]
        sq += ((out["rgb"].clamp(0, 1) - target) ** 2).sum().item()
        count += target.numel()
        hits += int(out["hit"].sum())
    mse = sq / max(count, 1)
    return {"recon_psnr": -10.0 * torch.log10(torch.tensor(max(mse, 1e-12))).item(),
            "hit_fraction": hits / max(len(subset), 1)}


@torch.no_grad()
def novel_views(model: EyeRadiance, gt: dict, size: int, fov_deg: float) -> list[dict]:
    """Ground truth and rendered views of the scene from virtual cameras at the eyes' mean true
    apex, looking at the camera (what the corneas reflect), plus two shifted viewpoints."""
    device = model.depth_mm.device
    scene = Scene.from_dict(gt["scene"])
    centre = torch.tensor(gt["apex"], dtype=torch.float64).mean(0)
    c2w = model.c2w[:1]
    views = []
    for offset in ((0.0, 0.0, 0.0), (-60.0, 0.0, 0.0), (60.0, 30.0, 0.0)):
        eye = centre + torch.tensor(offset, dtype=torch.float64)
        dirs = look_at_dirs(eye, -eye, size, fov_deg).reshape(-1, 3)
        origins = eye.expand_as(dirs)
        true = trace_scene(scene, origins, dirs).float()
        preds = []
        for o, d in zip(origins.float().split(4096), dirs.float().split(4096)):
            o, d = o.to(device), d.to(device)
            ow, dw = camera_to_world(o, d, c2w.expand(o.shape[0], 3, 4))
            index = torch.zeros(o.shape[0], dtype=torch.int64, device=device)
            preds.append(model.scene(ow, dw, index)["rgb"].float().cpu())
        shape = (size, size, 3)
        pred = torch.cat(preds).clamp(0, 1).reshape(shape)
        views.append({"true": true.reshape(shape), "pred": pred})
    return views


@torch.no_grad()
def iris_error(model: EyeRadiance, gt: dict, size: int = 48):
    """MSE of T against the true iris on the unit disc of limbus-plane coordinates; returns
    (mse, true [size, size, 3], learned [size, size, 3])."""
    device = model.depth_mm.device
    lin = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    vv, uu = torch.meshgrid(lin, lin, indexing="ij")
    coords = torch.stack([uu, vv], -1).reshape(-1, 2)
    inside = coords.norm(dim=-1) <= 1
    true = iris_texture(coords.double(), angular=gt["iris_angular"]).float()
    if model.texture is not None:
        pred = model.texture(iris_texture_coords(coords.to(device))).float().cpu()
    else:
        pred = torch.zeros_like(true)
    mse = ((pred - true) ** 2)[inside].mean().item()
    mask = inside[:, None].float()
    return mse, (true * mask).reshape(size, size, 3), (pred * mask).reshape(size, size, 3)

"""Cameras and the EG3D/GSM label layout.

A label row is [cam2world (16, OpenCV: x right, y down, z forward) | intrinsics (9, normalised by
the image size: fx/W, cx/W, ...) | global_orient (3) | body_pose (69) | betas (10)] = 107 values,
the layout of the official `dataset.json` for SHHQ/DeepFashion (`parse_raw_labels`). The
discriminator is conditioned on the whole row (official D c_dim = 25 + 72 + 10).

Shapes: B batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LABEL_DIM = 107
CAMERA_DIM = 25


def look_at(eye: torch.Tensor, target: torch.Tensor, up: torch.Tensor | None = None) -> torch.Tensor:
    """OpenCV cam2world [B, 4, 4] looking from eye [B, 3] at target [B, 3] (world y is up)."""
    up = torch.tensor([0.0, 1.0, 0.0]).expand_as(eye) if up is None else up
    forward = F.normalize(target - eye, dim=-1)  # camera +z
    right = F.normalize(torch.cross(forward, up, dim=-1), dim=-1)  # camera +x
    down = torch.cross(forward, right, dim=-1)  # camera +y (image down)
    c2w = torch.eye(4).repeat(eye.shape[0], 1, 1)
    c2w[:, :3, :3] = torch.stack([right, down, forward], -1)
    c2w[:, :3, 3] = eye
    return c2w


def orbit_cameras(yaw: torch.Tensor, pitch: torch.Tensor, radius: float,
                  target: tuple[float, float, float] = (0.0, -0.05, 0.0)) -> torch.Tensor:
    """cam2world [B, 4, 4] on a sphere around `target`; yaw 0 looks at the body's front (+z)."""
    t = torch.tensor(target).expand(yaw.shape[0], 3)
    eye = t + radius * torch.stack([torch.sin(yaw) * torch.cos(pitch), torch.sin(pitch),
                                    torch.cos(yaw) * torch.cos(pitch)], -1)
    return look_at(eye, t)


def normalized_intrinsics(fov_deg: float, batch: int) -> torch.Tensor:
    """[B, 3, 3] intrinsics in units of the image size (principal point at the centre)."""
    focal = 0.5 / math.tan(math.radians(fov_deg) / 2)
    k = torch.tensor([[focal, 0.0, 0.5], [0.0, focal, 0.5], [0.0, 0.0, 1.0]])
    return k.repeat(batch, 1, 1)


def make_label(c2w: torch.Tensor, k_norm: torch.Tensor, global_orient: torch.Tensor,
               body_pose: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
    """Pack [B, 107] labels."""
    return torch.cat([c2w.flatten(1), k_norm.flatten(1), global_orient, body_pose, betas], 1)


# the official SHHQ / DeepFashion label convention (assets/pose_example.npy): a fixed camera on
# the -z axis looking along +z (cam2world rotation = identity, OpenCV axes), fx ~ 4.89 of the
# image width, and the SMPL body turned upside down by global_orient ~ (pi, 0, 0) so that it
# stands upright in the y-down image, facing the camera
OFFICIAL_DISTANCE = 11.38
OFFICIAL_FOCAL = 4.89


def official_labels(body_pose: torch.Tensor, betas: torch.Tensor, yaw: torch.Tensor,
                    distance: float = OFFICIAL_DISTANCE, focal: float = OFFICIAL_FOCAL
                    ) -> torch.Tensor:
    """Labels [B, 107] in the official convention; the view changes by turning the body.

    Args: body_pose [B, 69], betas [B, 10], yaw [B] radians about the body's vertical axis
    (0 = facing the camera).
    """
    batch = body_pose.shape[0]
    c2w = torch.eye(4).repeat(batch, 1, 1)
    c2w[:, 2, 3] = -distance
    k = torch.tensor([[focal, 0.0, 0.5], [0.0, focal, 0.5], [0.0, 0.0, 1.0]]).repeat(batch, 1, 1)
    flip = torch.tensor([[1.0, 0, 0], [0, -1.0, 0], [0, 0, -1.0]])  # R_x(pi)
    c, s = torch.cos(yaw), torch.sin(yaw)
    zero, one = torch.zeros_like(yaw), torch.ones_like(yaw)
    rot_y = torch.stack([c, zero, s, zero, one, zero, -s, zero, c], -1).reshape(batch, 3, 3)
    return make_label(c2w, k, matrix_to_axis_angle(flip @ rot_y), body_pose, betas)


def matrix_to_axis_angle(rot: torch.Tensor) -> torch.Tensor:
    """Rotation matrices [B, 3, 3] -> axis-angle [B, 3] (angle in [0, pi])."""
    cos = ((rot.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1)
    angle = torch.acos(cos)
    skew = torch.stack([rot[:, 2, 1] - rot[:, 1, 2], rot[:, 0, 2] - rot[:, 2, 0],
                        rot[:, 1, 0] - rot[:, 0, 1]], -1)
    sin = torch.sin(angle)
    axis = skew / (2 * sin.clamp(min=1e-6))[:, None]
    # near pi the skew part vanishes: sym(R) = cos I + (1 - cos) n n^T gives n up to sign
    near_pi = sin < 1e-3
    if near_pi.any():
        r, cp = rot[near_pi], cos[near_pi, None, None]
        nnt = ((r + r.transpose(1, 2)) / 2 - cp * torch.eye(3)) / (1 - cp).clamp(min=1e-6)
        col = nnt.gather(2, nnt.diagonal(dim1=-2, dim2=-1).argmax(1)[:, None, None]
                         .expand(-1, 3, 1))[..., 0]  # the column of the largest |n_i|
        axis_pi = torch.nn.functional.normalize(col, dim=-1)
        sign = torch.sign((axis_pi * skew[near_pi]).sum(-1))
        axis[near_pi] = axis_pi * torch.where(sign == 0, 1.0, sign)[:, None]
    return torch.nn.functional.normalize(axis, dim=-1) * angle[:, None]


def split_label(label: torch.Tensor, resolution: int) -> dict[str, torch.Tensor]:
    """Unpack [B, 107] labels into viewmats [B,4,4], pixel Ks [B,3,3] and SMPL parameters."""
    assert label.ndim == 2 and label.shape[1] == LABEL_DIM, label.shape
    c2w = label[:, :16].reshape(-1, 4, 4)
    k = label[:, 16:25].reshape(-1, 3, 3).clone()
    k[:, :2] = k[:, :2] * resolution
    return {"viewmats": torch.linalg.inv(c2w), "Ks": k, "global_orient": label[:, 25:28],
            "body_pose": label[:, 28:97], "betas": label[:, 97:107]}


def project_points(points: torch.Tensor, viewmats: torch.Tensor, Ks: torch.Tensor) -> torch.Tensor:
    """Pixel coordinates [B, P, 2] of world points [B, P, 3]."""
    cam = points @ viewmats[:, :3, :3].transpose(1, 2) + viewmats[:, None, :3, 3]
    uv = cam @ Ks.transpose(1, 2)
    return uv[..., :2] / uv[..., 2:].clamp(min=1e-6)

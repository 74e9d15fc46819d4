"""Inference tools: sample identities, re-pose, turntables, and 3DGS `.ply` export/import.

The `.ply` follows the original 3DGS layout (x y z nx ny nz f_dc_0..2 opacity scale_0..2
rot_0..3, little-endian float32) so generated humans open in standard 3DGS viewers: colours are
stored as degree-0 SH coefficients (c - 0.5) / C0, opacity as a logit, scales as logs.

Shapes: B batch, N Gaussians, F frames.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from .cameras import make_label, normalized_intrinsics, orbit_cameras
from .data import CAMERA_RADIUS, FOV_DEG

SH_C0 = 0.28209479177387814
PLY_FIELDS = (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", "opacity"]
              + [f"scale_{i}" for i in range(3)] + [f"rot_{i}" for i in range(4)])


def export_ply(path: str | Path, means: torch.Tensor, quats: torch.Tensor, scales: torch.Tensor,
               opacities: torch.Tensor, colors: torch.Tensor) -> Path:
    """Write one scene's Gaussians (means [N,3], quats [N,4] wxyz, scales [N,3] > 0,
    opacities [N] in (0,1), colors [N,3] in [0,1]) as a binary 3DGS .ply."""
    n = means.shape[0]
    op = opacities.clamp(1e-6, 1 - 1e-6)
    data = torch.cat([means, torch.zeros(n, 3), (colors - 0.5) / SH_C0,
                      torch.log(op / (1 - op))[:, None], torch.log(scales.clamp(min=1e-12)),
                      quats], 1).detach().cpu().numpy().astype("<f4")
    header = ("ply\nformat binary_little_endian 1.0\n" f"element vertex {n}\n"
              + "".join(f"property float {f}\n" for f in PLY_FIELDS) + "end_header\n")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.write(header.encode("ascii"))
        f.write(data.tobytes())
    return path


def import_ply(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a binary 3DGS .ply written by `export_ply` (or any with the same float fields)."""
    raw = Path(path).read_bytes()
    end = raw.index(b"end_header\n") + len(b"end_header\n")
    header = raw[:end].decode("ascii").splitlines()
    if "format binary_little_endian 1.0" not in header:
        raise ValueError(f"{path}: only binary little-endian .ply is supported")
    count = next(int(h.split()[-1]) for h in header if h.startswith("element vertex"))
    fields = [h.split()[-1] for h in header if h.startswith("property float")]
    missing = [f for f in PLY_FIELDS if f not in fields]
    if missing:
        raise ValueError(f"{path}: missing 3DGS fields {missing}")
    arr = torch.from_numpy(np.frombuffer(raw[end:], dtype="<f4").reshape(count, len(fields)).copy())
    col = {f: arr[:, i] for i, f in enumerate(fields)}

    def stack(names):
        return torch.stack([col[n] for n in names], 1)

    return {"means": stack(["x", "y", "z"]), "quats": stack([f"rot_{i}" for i in range(4)]),
            "scales": torch.exp(stack([f"scale_{i}" for i in range(3)])),
            "opacities": torch.sigmoid(col["opacity"]),
            "colors": stack([f"f_dc_{i}" for i in range(3)]) * SH_C0 + 0.5}


def turntable_labels(label: torch.Tensor, frames: int, pitch: float = 0.05) -> torch.Tensor:
    """F labels [F, 107]: the pose/shape of `label` [107] seen from yaw 0..2pi."""
    yaw = torch.linspace(0, 2 * math.pi, frames + 1)[:-1]
    c2w = orbit_cameras(yaw, torch.full((frames,), pitch), CAMERA_RADIUS)
    smpl = label[25:].expand(frames, -1)
    return torch.cat([c2w.flatten(1), normalized_intrinsics(FOV_DEG, frames).flatten(1), smpl], 1)


def repose_labels(label: torch.Tensor, body_poses: torch.Tensor) -> torch.Tensor:
    """Labels [F, 107] with `label`'s camera/shape and a new SMPL pose sequence [F, 69]."""
    out = label.expand(body_poses.shape[0], -1).clone()
    out[:, 28:97] = body_poses
    return out


def front_label(body_pose: torch.Tensor | None = None, yaw: float = 0.0) -> torch.Tensor:
    """A frontal label [107] (canonical-ish pose when body_pose is None)."""
    c2w = orbit_cameras(torch.tensor([yaw]), torch.tensor([0.05]), CAMERA_RADIUS)
    pose = torch.zeros(1, 69) if body_pose is None else body_pose[None]
    return make_label(c2w, normalized_intrinsics(FOV_DEG, 1), torch.zeros(1, 3), pose,
                      torch.zeros(1, 10))[0]


@torch.no_grad()
def render_identity(gen, z: torch.Tensor, labels: torch.Tensor, resolution: int,
                    truncation_psi: float = 1.0, chunk: int = 8) -> torch.Tensor:
    """One identity z [z_dim] rendered under F labels [F, 107] -> images [F, 3, H, H]."""
    ws = gen.mapping(z[None], truncation_psi=truncation_psi)
    out = []
    for i in range(0, len(labels), chunk):
        lab = labels[i:i + chunk].to(z.device)
        out.append(gen(z[None].expand(len(lab), -1), lab, resolution,
                       ws=ws.expand(len(lab), -1, -1), noise=False)["image"])
    return torch.cat(out)

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

from .cameras import LABEL_DIM, make_label, normalized_intrinsics, orbit_cameras
from .data import CAMERA_RADIUS, FOV_DEG
from .runtime import DataError, MissingPathError

SH_C0 = 0.28209479177387814
PLY_FIELDS = (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", "opacity"]
              + [f"scale_{i}" for i in range(3)] + [f"rot_{i}" for i in range(4)])


def export_ply(path: str | Path, means: torch.Tensor, quats: torch.Tensor, scales: torch.Tensor,
               opacities: torch.Tensor, colors: torch.Tensor) -> Path:
    """Write one scene's Gaussians (means [N,3], quats [N,4] wxyz, scales [N,3] > 0,
    opacities [N] in (0,1), colors [N,3] in [0,1]) as a binary 3DGS .ply."""
    n = means.shape[0]
    data = ply_rows(means, quats, scales, opacities, colors).detach().cpu().numpy().astype("<f4")
    header = ("ply\nformat binary_little_endian 1.0\n" f"element vertex {n}\n"
              + "".join(f"property float {f}\n" for f in PLY_FIELDS) + "end_header\n")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.write(header.encode("ascii"))
        f.write(data.tobytes())
    return path


def ply_rows(means: torch.Tensor, quats: torch.Tensor, scales: torch.Tensor,
             opacities: torch.Tensor, colors: torch.Tensor) -> torch.Tensor:
    """[N, 17] rows in PLY_FIELDS order, on the Gaussians' device (normals are zero)."""
    op = opacities.clamp(1e-6, 1 - 1e-6)
    normals = torch.zeros(means.shape[0], 3, dtype=means.dtype, device=means.device)
    return torch.cat([means, normals, (colors - 0.5) / SH_C0, torch.log(op / (1 - op))[:, None],
                      torch.log(scales.clamp(min=1e-12)), quats], 1)


def import_ply(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a binary 3DGS .ply written by `export_ply` (or any with the same float fields)."""
    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f".ply not found: {path}")
    raw = path.read_bytes()
    end = raw.find(b"end_header\n")
    if not raw.startswith(b"ply\n") or end < 0:
        raise DataError(f"{path}: not a .ply (no 'ply' / 'end_header' lines)")
    end += len(b"end_header\n")
    header = raw[:end].decode("ascii", errors="replace").splitlines()
    if "format binary_little_endian 1.0" not in header:
        raise DataError(f"{path}: only binary little-endian .ply is supported")
    counts = [h.split()[-1] for h in header if h.startswith("element vertex")]
    if len(counts) != 1 or not counts[0].isdigit():
        raise DataError(f"{path}: needs one 'element vertex N' line")
    count = int(counts[0])
    fields = [h.split()[-1] for h in header if h.startswith("property float")]
    missing = [f for f in PLY_FIELDS if f not in fields]
    if missing:
        raise DataError(f"{path}: missing 3DGS fields {missing}")
    if len(raw) - end != 4 * count * len(fields):
        raise DataError(f"{path}: {len(raw) - end} data bytes for {count} vertices of "
                        f"{len(fields)} floats (truncated or padded)")
    arr = torch.from_numpy(np.frombuffer(raw[end:], dtype="<f4").reshape(count, len(fields)).copy())
    col = {f: arr[:, i] for i, f in enumerate(fields)}

    def stack(names):
        return torch.stack([col[n] for n in names], 1)

    return {"means": stack(["x", "y", "z"]), "quats": stack([f"rot_{i}" for i in range(4)]),
            "scales": torch.exp(stack([f"scale_{i}" for i in range(3)])),
            "opacities": torch.sigmoid(col["opacity"]),
            "colors": stack([f"f_dc_{i}" for i in range(3)]) * SH_C0 + 0.5}


def axis_angle_to_matrix(aa: torch.Tensor) -> torch.Tensor:
    """Rodrigues: axis-angle [..., 3] -> rotation matrices [..., 3, 3]."""
    angle = aa.norm(dim=-1, keepdim=True)[..., None]  # [..., 1, 1]
    axis = aa / aa.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    x, y, z = axis.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(aa.shape[:-1] + (3, 3))
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device).expand_as(k)
    return eye + torch.sin(angle) * k + (1 - torch.cos(angle)) * (k @ k)


def turntable_labels(label: torch.Tensor, frames: int,
                     pivot: torch.Tensor | None = None) -> torch.Tensor:
    """F labels [F, 107] orbiting `label`'s camera 360 degrees around the body's vertical axis.

    Works for any label convention (ours: camera on +z, body upright; official SHHQ /
    DeepFashion: camera on -z, body flipped by global_orient ~ (pi, 0, 0)): the axis is the
    body's up direction R(global_orient) @ (0, 1, 0) through `pivot` (default: the origin,
    where SMPL's root sits up to a few cm); intrinsics, pose and shape stay those of `label`.
    """
    assert label.shape == (LABEL_DIM,), label.shape
    up = axis_angle_to_matrix(label[25:28]) @ torch.tensor([0.0, 1.0, 0.0], dtype=label.dtype)
    yaw = torch.linspace(0, 2 * math.pi, frames + 1, dtype=label.dtype)[:-1]
    rot = axis_angle_to_matrix(yaw[:, None] * up)  # [F, 3, 3]
    c2w = label[:16].reshape(4, 4).expand(frames, 4, 4).clone()
    pivot = torch.zeros(3, dtype=label.dtype) if pivot is None else pivot.to(label.dtype)
    c2w[:, :3, :3] = rot @ c2w[:, :3, :3]
    c2w[:, :3, 3] = (rot @ (c2w[:, :3, 3] - pivot)[..., None])[..., 0] + pivot
    out = label.expand(frames, -1).clone()
    out[:, :16] = c2w.flatten(1)
    return out


def repose_labels(label: torch.Tensor, poses: torch.Tensor) -> torch.Tensor:
    """Labels [F, 107] with `label`'s camera and shape and a new SMPL sequence `poses`:
    [F, 69] body poses, [F, 3] global orientations (the official `seq_novel_pose.npy`, used by
    `gen_novel_pose.py` as `orient`), or [F, 72] both (global_orient first)."""
    assert label.shape == (LABEL_DIM,), label.shape
    cols = {3: slice(25, 28), 69: slice(28, 97), 72: slice(25, 97)}
    if poses.ndim != 2 or poses.shape[1] not in cols:
        raise DataError(f"pose sequence of shape {tuple(poses.shape)}",
                        "expected [F, 69] body poses, [F, 3] global orientations or [F, 72]")
    out = label.expand(poses.shape[0], -1).clone()
    out[:, cols[poses.shape[1]]] = poses.to(label.dtype)
    return out


def load_pose_sequence(path: str | Path) -> torch.Tensor:
    """A pose sequence .npy ([F, 3] global orientations such as the official
    `seq_novel_pose.npy`, [F, 69] body poses or [F, 72]) as float32 [F, k]."""
    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"pose sequence not found: {path}", "a .npy of [F, 3|69|72]")
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as err:  # numpy raises ValueError, OSError, EOFError, SyntaxError, ...
        raise DataError(f"{path} is not a readable .npy ({type(err).__name__})",
                        "a float array [F, 3|69|72] saved with numpy.save") from err
    if arr.dtype.kind not in "fiu" or arr.ndim != 2 or arr.shape[1] not in (3, 69, 72) \
            or arr.shape[0] == 0:
        raise DataError(f"{path}: array {arr.dtype} {arr.shape}",
                        "expected a float array [F, 3|69|72] (F >= 1)")
    if not np.isfinite(arr).all():
        raise DataError(f"{path}: non-finite pose values")
    return torch.from_numpy(arr.astype(np.float32))


def front_label(body_pose: torch.Tensor | None = None, yaw: float = 0.0) -> torch.Tensor:
    """A frontal label [107] (canonical-ish pose when body_pose is None)."""
    c2w = orbit_cameras(torch.tensor([yaw]), torch.tensor([0.05]), CAMERA_RADIUS)
    pose = torch.zeros(1, 69) if body_pose is None else body_pose[None]
    return make_label(c2w, normalized_intrinsics(FOV_DEG, 1), torch.zeros(1, 3), pose,
                      torch.zeros(1, 10))[0]


@torch.no_grad()
def render_identity(gen, z: torch.Tensor, labels: torch.Tensor, resolution: int,
                    truncation_psi: float = 1.0, chunk: int = 8, backend: str = "torch"
                    ) -> torch.Tensor:
    """One identity z [z_dim] rendered under F labels [F, 107] -> images [F, 3, H, H]."""
    ws = gen.mapping(z[None], truncation_psi=truncation_psi)
    out = []
    for i in range(0, len(labels), chunk):
        lab = labels[i:i + chunk].to(z.device)
        out.append(gen(z[None].expand(len(lab), -1), lab, resolution,
                       ws=ws.expand(len(lab), -1, -1), noise=False, backend=backend)["image"])
    return torch.cat(out)

"""Body template in the SMPL array layout, loaded through smplx (Sec. 3.1 of the paper).

GSM builds its shells from the SMPL mesh with a UV layout (official repo: assets/smpl/smpl_uv.obj).
SMPL's files are licensed and cannot be shipped, so offline we build a *procedural mannequin* with
exactly SMPL's arrays (24 joints and SMPL's kinematic tree, v_template, f, shapedirs, posedirs,
J_regressor, weights, kintree_table) plus a UV atlas (vt, ft), write it as
`<dir>/smpl/SMPL_NEUTRAL.pkl` and load it with `smplx.create(<dir>, model_type="smpl")`, the same
path a real SMPL file takes (smplx 0.1.28's SMPL class reads only .pkl from a folder; an .npz is
passed to it as `data_struct`). The mannequin is a set of capsules, one per bone, each with its own UV chart.

Shapes: V vertices, F faces, T UV vertices, J = 24 joints.
"""

from __future__ import annotations

import math
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

NUM_JOINTS = 24
# SMPL kinematic tree (parents of joints 0..23).
SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
HEAD_JOINT = 15
# Approximate SMPL canonical joint positions (metres, y up, facing +z), mirrored left/right.
_JOINTS = np.array([
    [0.00, 0.00, 0.00], [0.07, -0.09, 0.0], [-0.07, -0.09, 0.0], [0.00, 0.11, -0.01],
    [0.10, -0.47, 0.0], [-0.10, -0.47, 0.0], [0.00, 0.24, 0.0], [0.09, -0.87, -0.02],
    [-0.09, -0.87, -0.02], [0.00, 0.30, 0.0], [0.11, -0.93, 0.10], [-0.11, -0.93, 0.10],
    [0.00, 0.50, -0.01], [0.07, 0.42, 0.0], [-0.07, 0.42, 0.0], [0.00, 0.60, 0.02],
    [0.17, 0.44, -0.01], [-0.17, 0.44, -0.01], [0.42, 0.43, -0.02], [-0.42, 0.43, -0.02],
    [0.66, 0.43, -0.01], [-0.66, 0.43, -0.01], [0.74, 0.43, -0.01], [-0.74, 0.43, -0.01],
], dtype=np.float64)
# (start joint, end joint or None, extra end offset, radius): one capsule per bone; the capsule's
# own joint is the start joint (it rotates the capsule); None = a leaf capsule along `offset`.
_BONES = [
    (0, 3, None, 0.13), (3, 6, None, 0.13), (6, 9, None, 0.14), (9, 12, None, 0.12),
    (1, 4, None, 0.075), (2, 5, None, 0.075), (4, 7, None, 0.055), (5, 8, None, 0.055),
    (7, 10, None, 0.045), (8, 11, None, 0.045), (12, 15, None, 0.05),
    (15, None, (0.0, 0.16, 0.0), 0.10), (13, 16, None, 0.05), (14, 17, None, 0.05),
    (16, 18, None, 0.045), (17, 19, None, 0.045), (18, 20, None, 0.04), (19, 21, None, 0.04),
    (20, 22, None, 0.035), (21, 23, None, 0.035),
    (22, None, (0.07, 0.0, 0.0), 0.03), (23, None, (-0.07, 0.0, 0.0), 0.03),
]
REQUIRED_SMPL_FILES = "smpl/SMPL_NEUTRAL.pkl (or .npz) and smpl_uv.obj (UV layout, e.g. GSM's assets)"


@dataclass
class BodyTemplate:
    """SMPL-format template tensors (float32 on CPU).

    Attributes:
        v_template: [V, 3] canonical vertices. faces: [F, 3] long. vt: [T, 2] UVs in [0, 1].
        ft: [F, 3] long, UV index per face corner. shapedirs: [V, 3, B]. posedirs: [207, V*3]
        (smplx layout). J_regressor: [J, V]. parents: [J] long. lbs_weights: [V, J].
    """

    v_template: torch.Tensor
    faces: torch.Tensor
    vt: torch.Tensor
    ft: torch.Tensor
    shapedirs: torch.Tensor
    posedirs: torch.Tensor
    J_regressor: torch.Tensor
    parents: torch.Tensor
    lbs_weights: torch.Tensor

    def joints(self) -> torch.Tensor:
        """[J, 3] canonical joints = J_regressor @ v_template."""
        return self.J_regressor @ self.v_template


def _capsule(start: np.ndarray, end: np.ndarray, radius: float, n_around: int, n_len: int,
             n_cap: int):
    """Capsule around segment start->end. Returns verts [V,3], faces [F,3], vt [T,2], ft [F,3],
    axial position t [V] (metres from start, negative on the start cap), ring-at-start indices."""
    axis = end - start
    length = float(np.linalg.norm(axis))
    z = axis / length
    helper = np.array([0.0, 0.0, 1.0]) if abs(z[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    # ring list: (axial t, ring radius, v-coordinate in the chart)
    cap = [(-radius * math.cos(a), radius * math.sin(a))
           for a in np.linspace(0, math.pi / 2, n_cap + 1)]
    rings = cap[:-1] + [(t, radius) for t in np.linspace(0, length, n_len + 1)]
    rings += [(length + radius * math.sin(a), radius * math.cos(a))
              for a in np.linspace(0, math.pi / 2, n_cap + 1)[1:]]
    total = length + math.pi * radius
    angles = np.linspace(0, 2 * math.pi, n_around, endpoint=False)
    verts, ts, vt = [], [], []
    arc = 0.0
    prev_t = rings[0][0]
    for ring_id, (t, r) in enumerate(rings):
        arc += math.hypot(t - prev_t, r - (rings[ring_id - 1][1] if ring_id else 0.0))
        prev_t = t
        if r < 1e-9:  # pole: one vertex
            verts.append(start + t * z)
            ts.append(t)
        else:
            for a in angles:
                verts.append(start + t * z + r * (math.cos(a) * x + math.sin(a) * y))
                ts.append(t)
        v_coord = min(arc / total, 1.0)
        vt.extend([(k / n_around, v_coord) for k in range(n_around + 1)])
    # index helpers: ring i has 1 vertex (poles) or n_around vertices
    ring_start, counter = [], 0
    for _, r in rings:
        ring_start.append(counter)
        counter += 1 if r < 1e-9 else n_around
    faces, ft = [], []
    for i in range(len(rings) - 1):
        for k in range(n_around):
            k1 = (k + 1) % n_around
            a = ring_start[i] + (0 if rings[i][1] < 1e-9 else k)
            b = ring_start[i] + (0 if rings[i][1] < 1e-9 else k1)
            c = ring_start[i + 1] + (0 if rings[i + 1][1] < 1e-9 else k)
            d = ring_start[i + 1] + (0 if rings[i + 1][1] < 1e-9 else k1)
            ta, tb = i * (n_around + 1) + k, i * (n_around + 1) + k + 1
            tc, td = (i + 1) * (n_around + 1) + k, (i + 1) * (n_around + 1) + k + 1
            if a != b:
                faces.append((a, d, b))
                ft.append((ta, td, tb))
            if c != d:
                faces.append((a, c, d))
                ft.append((ta, tc, td))
    start_ring = ring_start[n_cap] + np.arange(n_around)  # the ring at t=0 (centred on start)
    end_ring = ring_start[n_cap + n_len] + np.arange(n_around)  # the ring at t=length
    return (np.array(verts), np.array(faces), np.array(vt), np.array(ft), np.array(ts),
            start_ring, end_ring, length)


def build_procedural_arrays(n_around: int = 12, n_len: int = 6, n_cap: int = 3) -> dict:
    """Arrays of the procedural mannequin in SMPL's npz layout (+ vt, ft)."""
    verts, faces, vts, fts, weights, shape_b1 = [], [], [], [], [], []
    regressor_rings: dict[int, np.ndarray] = {}
    n_bones = len(_BONES)
    cols = math.ceil(math.sqrt(n_bones))
    v_off = t_off = 0
    for bone_id, (j0, j1, extra, radius) in enumerate(_BONES):
        start = _JOINTS[j0]
        end = _JOINTS[j1] if j1 is not None else start + np.array(extra)
        v, f, vt, ft, ts, ring0, ring1, length = _capsule(start, end, radius, n_around, n_len,
                                                          n_cap)
        # UV chart of this bone: one cell of a cols x cols atlas with a small margin
        cu, cv = bone_id % cols, bone_id // cols
        vt = (np.array([cu, cv]) + 0.05 + 0.9 * vt) / cols
        # skinning: own joint, blended towards the parent joint near the start (smooth elbows)
        w = np.zeros((len(v), NUM_JOINTS))
        parent = SMPL_PARENTS[j0]
        blend = np.clip(ts / (0.25 * length) * 0.5 + 0.5, 0.5, 1.0) if parent >= 0 else 1.0
        w[:, j0] = blend
        if parent >= 0:
            w[:, parent] = 1.0 - blend
        regressor_rings.setdefault(j0, ring0 + v_off)
        if j1 is not None:
            regressor_rings.setdefault(j1, ring1 + v_off)
        radial = v - (start + np.clip(ts, 0, length)[:, None] * (end - start) / length)
        verts.append(v)
        faces.append(f + v_off)
        vts.append(vt)
        fts.append(ft + t_off)
        weights.append(w)
        shape_b1.append(radial / max(radius, 1e-6))
        v_off += len(v)
        t_off += len(vt)
    v_template = np.concatenate(verts)
    num_verts = len(v_template)
    missing = [j for j in range(NUM_JOINTS) if j not in regressor_rings]
    assert not missing, f"joints without a ring: {missing}"
    j_regressor = np.zeros((NUM_JOINTS, num_verts))
    for j, ring in regressor_rings.items():
        j_regressor[j, ring] = 1.0 / len(ring)  # a ring's mean is its centre = the joint
    shapedirs = np.zeros((num_verts, 3, 10))
    shapedirs[:, :, 0] = 0.1 * v_template  # beta_0: overall size (10% per unit)
    shapedirs[:, :, 1] = 0.01 * np.concatenate(shape_b1)  # beta_1: girth (1 cm per unit)
    kintree = np.stack([np.array(SMPL_PARENTS), np.arange(NUM_JOINTS)]).astype(np.int64)
    return {
        "v_template": v_template, "f": np.concatenate(faces).astype(np.int64),
        "shapedirs": shapedirs, "posedirs": np.zeros((num_verts, 3, 207)),
        "J_regressor": j_regressor, "weights": np.concatenate(weights),
        "kintree_table": kintree, "vt": np.concatenate(vts), "ft": np.concatenate(fts),
    }


def write_procedural_smpl(folder: str | Path) -> Path:
    """Write `<folder>/smpl/SMPL_NEUTRAL.pkl` (a pickled dict of numpy arrays, SMPL's format)."""
    folder = Path(folder)
    (folder / "smpl").mkdir(parents=True, exist_ok=True)
    with (folder / "smpl" / "SMPL_NEUTRAL.pkl").open("wb") as f:
        pickle.dump(build_procedural_arrays(), f)
    return folder


def read_obj_uv(path: str | Path) -> tuple[torch.Tensor, torch.Tensor, int]:
    """UVs of an .obj: vt [T, 2], ft [F, 3] (0-based), and its vertex count."""
    vt, ft, num_v = [], [], 0
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "v":
            num_v += 1
        elif parts[0] == "vt":
            vt.append([float(parts[1]), float(parts[2])])
        elif parts[0] == "f":
            corners = [p.split("/") for p in parts[1:4]]
            if any(len(c) < 2 or not c[1] for c in corners):
                raise ValueError(f"{path}: faces need v/vt indices (f a/ta b/tb c/tc)")
            ft.append([int(c[1]) - 1 for c in corners])
    if not vt or not ft:
        raise ValueError(f"{path}: no UVs (vt lines and f v/vt faces) found")
    return torch.tensor(vt, dtype=torch.float32), torch.tensor(ft, dtype=torch.long), num_v


def load_body_template(smpl_path: str = "") -> BodyTemplate:
    """Load SMPL (user path) or the procedural stand-in, always through `smplx.create`.

    Args:
        smpl_path: folder with `smpl/SMPL_NEUTRAL.pkl|npz` and `smpl_uv.obj`; "" = procedural.
    """
    import smplx

    if smpl_path:
        root = Path(smpl_path)
        model_file = next((root / "smpl" / f"SMPL_NEUTRAL.{e}" for e in ("npz", "pkl")
                           if (root / "smpl" / f"SMPL_NEUTRAL.{e}").is_file()), None)
        uv_file = root / "smpl_uv.obj"
        if model_file is None or not uv_file.is_file():
            raise FileNotFoundError(f"SMPL files missing under {root}: expected {REQUIRED_SMPL_FILES}")
        return _from_smplx(smplx, root, model_file, read_obj_uv(uv_file))
    with tempfile.TemporaryDirectory() as tmp:
        model_file = write_procedural_smpl(tmp) / "smpl" / "SMPL_NEUTRAL.pkl"
        with model_file.open("rb") as f:
            data = pickle.load(f)
        uv = (torch.tensor(data["vt"], dtype=torch.float32), torch.tensor(data["ft"]),
              len(data["v_template"]))
        return _from_smplx(smplx, Path(tmp), model_file, uv)


def _from_smplx(smplx, root: Path, model_file: Path, uv: tuple) -> BodyTemplate:
    try:
        kwargs = {}
        if model_file.suffix == ".npz":  # smplx reads only pickles itself: hand it the arrays
            kwargs["data_struct"] = smplx.utils.Struct(**dict(np.load(model_file, allow_pickle=True)))
        body = smplx.create(str(root), model_type="smpl", gender="neutral", num_betas=10, **kwargs)
    except Exception as err:  # smplx raises bare asserts / KeyErrors on malformed files
        raise ValueError(f"could not load SMPL model under {root} (expected "
                         f"{REQUIRED_SMPL_FILES}): {type(err).__name__}: {err}") from err
    vt, ft, num_v = uv
    faces = torch.as_tensor(np.asarray(body.faces, dtype=np.int64))
    if num_v != body.v_template.shape[0] or ft.shape[0] != faces.shape[0]:
        raise ValueError(f"UV mesh has {num_v} vertices / {ft.shape[0]} faces but SMPL has "
                         f"{body.v_template.shape[0]} / {faces.shape[0]}: use the matching smpl_uv.obj")
    return BodyTemplate(
        v_template=body.v_template.float(), faces=faces, vt=vt, ft=ft,
        shapedirs=body.shapedirs.float(), posedirs=body.posedirs.float(),
        J_regressor=body.J_regressor.float(), parents=body.parents.long(),
        lbs_weights=body.lbs_weights.float())

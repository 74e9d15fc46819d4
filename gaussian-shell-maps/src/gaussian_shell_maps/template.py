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

from .runtime import DataError, MissingPathError, UserError

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
SHRINK_MAX = 0.025  # metres: the official shrunk SMPL mesh lies ~2.4 cm inside on average
REQUIRED_SMPL_FILES = "smpl/SMPL_NEUTRAL.pkl (or .npz) and smpl_uv.obj (UV layout, e.g. GSM's assets)"


@dataclass
class BodyTemplate:
    """SMPL-format template tensors (float32 on CPU).

    Attributes:
        v_template: [V, 3] canonical vertices. faces: [F, 3] long. vt: [T, 2] UVs in [0, 1] or
        None (no UV layout of SMPL's own mesh given). ft: [F, 3] long, UV index per face corner,
        or None. shapedirs: [V, 3, B]. posedirs: [207, V*3] (smplx layout). J_regressor: [J, V].
        parents: [J] long. lbs_weights: [V, J]. v_shrunk: [V, 3] the shrunk reference mesh for
        inner shells (official `smpl_uv_shrunk.obj`; built in for the mannequin) or None.
    """

    v_template: torch.Tensor
    faces: torch.Tensor
    vt: torch.Tensor | None
    ft: torch.Tensor | None
    shapedirs: torch.Tensor
    posedirs: torch.Tensor
    J_regressor: torch.Tensor
    parents: torch.Tensor
    lbs_weights: torch.Tensor
    v_shrunk: torch.Tensor | None = None

    def to(self, device) -> BodyTemplate:
        return BodyTemplate(**{k: None if v is None else v.to(device)
                               for k, v in vars(self).items()})

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
            # counter-clockwise seen from outside: normals point out of the capsule
            if a != b:
                faces.append((a, b, d))
                ft.append((ta, tb, td))
            if c != d:
                faces.append((a, d, c))
                ft.append((ta, td, tc))
    start_ring = ring_start[n_cap] + np.arange(n_around)  # the ring at t=0 (centred on start)
    end_ring = ring_start[n_cap + n_len] + np.arange(n_around)  # the ring at t=length
    return (np.array(verts), np.array(faces), np.array(vt), np.array(ft), np.array(ts),
            start_ring, end_ring, length)


def build_procedural_arrays(n_around: int = 12, n_len: int = 6, n_cap: int = 3) -> dict:
    """Arrays of the procedural mannequin in SMPL's npz layout (+ vt, ft)."""
    verts, faces, vts, fts, weights, shape_b1, shrunk, bone = [], [], [], [], [], [], [], []
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
        # shrunk reference mesh (the role of the official smpl_uv_shrunk.obj): every vertex moved
        # towards its capsule axis by min(40% of the radius, 2.5 cm), so it never crosses the axis
        shrunk.append(v - min(0.4, SHRINK_MAX / radius) * radial)
        bone.append(np.full(len(v), bone_id))
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
        "v_shrunk": np.concatenate(shrunk), "bone": np.concatenate(bone),
    }


# capsules left out of the stand-in "no hands, feet" base mesh (as the official
# smpl_uv_no_hands_feet_ear.obj leaves out SMPL's hands, feet and ears): feet and hand tips
_STANDIN_DROPPED_BONES = [i for i, b in enumerate(_BONES) if b[0] in (7, 8, 22, 23)]
STANDIN_FILES = {"base_mesh": "smpl_uv_no_hands_feet_ear.obj",
                 "shrunk_mesh": "smpl_uv_no_hands_feet_ear_shrunk.obj",
                 "smpl_shrunk_mesh": "smpl_uv_shrunk.obj", "uv_mask": "mask_uv.png",
                 "part_vertices": "parts_vertices.yaml"}


def write_standin_assets(folder: str | Path, mask_resolution: int = 512) -> Path:
    """Write the official `assets/` layout built from the procedural mannequin (no SMPL data):
    smpl/SMPL_NEUTRAL.pkl, smpl_uv.obj, smpl_uv_shrunk.obj, a base mesh without hands and feet
    (+ its shrunk copy) under the official file names, mask_uv.png and parts_vertices.yaml.
    Lets the paper preset (base mesh, shrunk meshes, UV mask, head vertices) run offline."""
    from PIL import Image

    folder = write_procedural_smpl(folder)
    smpl = folder / "smpl"
    a = build_procedural_arrays()
    write_obj(smpl / "smpl_uv.obj", a["v_template"], a["f"], a["vt"], a["ft"])
    write_obj(smpl / "smpl_uv_shrunk.obj", a["v_shrunk"], a["f"], a["vt"], a["ft"])
    keep_v = ~np.isin(a["bone"], _STANDIN_DROPPED_BONES)
    keep_f = keep_v[a["f"]].all(1)
    new_id = np.cumsum(keep_v) - 1
    faces, ft = new_id[a["f"][keep_f]], a["ft"][keep_f]
    used_t = np.unique(ft)
    ft = np.searchsorted(used_t, ft)
    write_obj(smpl / STANDIN_FILES["base_mesh"], a["v_template"][keep_v], faces,
              a["vt"][used_t], ft)
    write_obj(smpl / STANDIN_FILES["shrunk_mesh"], a["v_shrunk"][keep_v], faces,
              a["vt"][used_t], ft)
    from .model import rasterize_uv_mask

    mask = rasterize_uv_mask(torch.tensor(a["vt"][used_t]), torch.tensor(ft), mask_resolution)
    Image.fromarray((mask.numpy() * 255).astype(np.uint8)).save(smpl / STANDIN_FILES["uv_mask"])
    head = np.nonzero(a["weights"].argmax(1) == HEAD_JOINT)[0]
    (smpl / STANDIN_FILES["part_vertices"]).write_text(
        "face: [" + ", ".join(map(str, head.tolist())) + "]\n")
    return folder


def read_part_vertices(path: str | Path, part: str = "face") -> torch.Tensor:
    """SMPL vertex ids of a part from the official `parts_vertices.yaml` (`face: [0, 1, ...]`
    flow lists; read without a YAML dependency)."""
    import re

    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"part vertices file not found: {path}",
                               "the official assets/smpl/parts_vertices.yaml")
    text = path.read_text(errors="replace")
    found = re.search(rf"^{part}\s*:\s*\[([^\]]*)\]", text, flags=re.MULTILINE)
    if found is None:
        raise DataError(f"{path}: no '{part}: [...]' list", "expected lines like face: [0, 1, 2]")
    try:
        ids = [int(x) for x in found.group(1).replace("\n", " ").split(",") if x.strip()]
    except ValueError as err:
        raise DataError(f"{path}: '{part}' holds a non-integer vertex id") from err
    if not ids or min(ids) < 0:
        raise DataError(f"{path}: '{part}' needs non-negative vertex ids")
    return torch.tensor(ids, dtype=torch.long)


def write_procedural_smpl(folder: str | Path) -> Path:
    """Write `<folder>/smpl/SMPL_NEUTRAL.pkl` (a pickled dict of numpy arrays, SMPL's format)."""
    folder = Path(folder)
    (folder / "smpl").mkdir(parents=True, exist_ok=True)
    with (folder / "smpl" / "SMPL_NEUTRAL.pkl").open("wb") as f:
        pickle.dump(build_procedural_arrays(), f)
    return folder


# ------------------------------------------------------------------------------------ .obj files
def read_obj(path: str | Path, need_uv: bool = True) -> dict[str, torch.Tensor]:
    """Vertices, triangles and UVs of a Wavefront .obj (polygons fan-triangulated, as pytorch3d's
    `load_obj` that the official code uses).

    Returns: dict v [V, 3], f [F, 3] long (0-based), and with UVs vt [T, 2], ft [F, 3] long.
    Raises DataError naming the file and line for anything malformed (missing UVs when
    `need_uv`, indices out of range, non-finite numbers, no faces).
    """
    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"mesh not found: {path}", "a Wavefront .obj with v, vt, f lines")
    v, vt, f, ft = [], [], [], []
    try:
        text = path.read_text(errors="strict")
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not a readable text .obj ({type(err).__name__})") from err
    for num, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts or parts[0] not in ("v", "vt", "f"):
            continue
        try:
            if parts[0] == "v":
                v.append([float(x) for x in parts[1:4]])
                if len(v[-1]) != 3:
                    raise ValueError("a vertex needs x y z")
            elif parts[0] == "vt":
                vt.append([float(x) for x in parts[1:3]])
                if len(vt[-1]) != 2:
                    raise ValueError("a UV needs u v")
            else:
                corners = [_obj_corner(c, len(v), len(vt)) for c in parts[1:]]
                if len(corners) < 3:
                    raise ValueError("a face needs 3 corners")
                for k in range(1, len(corners) - 1):  # fan triangulation
                    tri = (corners[0], corners[k], corners[k + 1])
                    f.append([c[0] for c in tri])
                    ft.append([c[1] for c in tri])
        except ValueError as err:
            raise DataError(f"{path} line {num}: {err}: {line.strip()[:60]!r}",
                            "expected v x y z / vt u v / f v/vt v/vt v/vt") from None
    if not f:
        raise DataError(f"{path}: no faces (f lines)", "a triangle mesh with UVs is expected")
    out = {"v": torch.tensor(v, dtype=torch.float32), "f": torch.tensor(f, dtype=torch.long)}
    bad = [i for i, tri in enumerate(f) if max(tri) >= len(v)]
    if bad:
        raise DataError(f"{path}: {len(bad)} faces index vertices past the {len(v)} given")
    if not torch.isfinite(out["v"]).all():
        raise DataError(f"{path}: non-finite vertex coordinates")
    if need_uv:
        if any(t is None for tri in ft for t in tri) or not vt:
            raise DataError(f"{path}: faces without UV indices", "faces must read f v/vt v/vt v/vt")
        out["vt"] = torch.tensor(vt, dtype=torch.float32)
        out["ft"] = torch.tensor(ft, dtype=torch.long)
        if int(out["ft"].max()) >= len(vt) or not torch.isfinite(out["vt"]).all():
            raise DataError(f"{path}: UV indices past the {len(vt)} vt lines or non-finite UVs")
    return out


def _obj_corner(token: str, num_v: int, num_vt: int) -> tuple[int, int | None]:
    """`v`, `v/vt`, `v//vn` or `v/vt/vn` -> 0-based (v, vt or None); negative = relative."""
    fields = token.split("/")
    idx = [int(x) if x else None for x in fields[:2]] + [None] * (2 - len(fields[:2]))
    if idx[0] is None:
        raise ValueError("a corner needs a vertex index")
    counts = (num_v, num_vt)
    out = []
    for i, count in zip(idx, counts):
        if i is None:
            out.append(None)
        elif i > 0:
            out.append(i - 1)
        elif i < 0 and -i <= count:
            out.append(count + i)
        else:
            raise ValueError(f"index {i} out of range")
    return out[0], out[1]


def write_obj(path: str | Path, verts, faces, vt=None, ft=None) -> Path:
    """Write a triangle mesh (+ UVs) as .obj, 1-based `f v/vt` corners."""
    verts, faces = np.asarray(verts), np.asarray(faces)
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in verts]
    if vt is not None:
        lines += [f"vt {u:.6f} {w:.6f}" for u, w in np.asarray(vt)]
        lines += ["f " + " ".join(f"{a + 1}/{t + 1}" for a, t in zip(tri, uv))
                  for tri, uv in zip(faces, np.asarray(ft))]
    else:
        lines += ["f " + " ".join(str(a + 1) for a in tri) for tri in faces]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def read_obj_uv(path: str | Path) -> tuple[torch.Tensor, torch.Tensor, int]:
    """UVs of an .obj: vt [T, 2], ft [F, 3] (0-based), and its vertex count."""
    mesh = read_obj(path)
    return mesh["vt"], mesh["ft"], mesh["v"].shape[0]


# ------------------------------------------------------------------------------- SMPL template
def find_asset(root: str | Path, name: str) -> Path | None:
    """`name` if absolute, else <root>/smpl/<name> (official assets layout) or <root>/<name>."""
    if not name:
        return None
    if Path(name).is_absolute():
        return Path(name)
    for cand in (Path(root) / "smpl" / name, Path(root) / name):
        if cand.is_file():
            return cand
    return Path(root) / "smpl" / name  # reported as missing by the reader


def load_body_template(smpl_path: str = "", need_uv: bool = True,
                       smpl_shrunk_mesh: str = "") -> BodyTemplate:
    """Load SMPL (user path) or the procedural stand-in, always through `smplx.create`.

    Args:
        smpl_path: folder with `smpl/SMPL_NEUTRAL.pkl|npz` (and, when SMPL's own mesh carries the
            shells, `smpl_uv.obj` in it or in `smpl/`); "" = procedural mannequin.
        need_uv: require SMPL's own UV layout (False when a separate base mesh carries the UVs).
        smpl_shrunk_mesh: SMPL-topology shrunk mesh for SMPL's inner shells (official
            `smpl_uv_shrunk.obj`), absolute or relative to smpl_path; "" = none (the mannequin's
            built-in one when procedural).
    """
    import smplx

    if smpl_path:
        root = Path(smpl_path)
        if not root.is_dir():
            raise MissingPathError(f"smpl_path {root} is not a folder",
                                   f"expected {REQUIRED_SMPL_FILES}")
        model_file = next((root / "smpl" / f"SMPL_NEUTRAL.{e}" for e in ("npz", "pkl")
                           if (root / "smpl" / f"SMPL_NEUTRAL.{e}").is_file()), None)
        uv_file = find_asset(root, "smpl_uv.obj") if need_uv else None
        if model_file is None or (uv_file is not None and not uv_file.is_file()):
            raise MissingPathError(f"SMPL files missing under {root}",
                                   f"expected {REQUIRED_SMPL_FILES}")
        template = _from_smplx(smplx, root, model_file, uv_file)
        shrunk = find_asset(root, smpl_shrunk_mesh)
        if shrunk is not None:
            template.v_shrunk = _read_same_mesh(shrunk, template.v_template, template.faces,
                                                "SMPL's mesh")
        return template
    with tempfile.TemporaryDirectory() as tmp:
        model_file = write_procedural_smpl(tmp) / "smpl" / "SMPL_NEUTRAL.pkl"
        with model_file.open("rb") as f:
            data = pickle.load(f)
        template = _from_smplx(smplx, Path(tmp), model_file, None)
    template.vt = torch.tensor(data["vt"], dtype=torch.float32)
    template.ft = torch.tensor(data["ft"], dtype=torch.long)
    template.v_shrunk = torch.tensor(data["v_shrunk"], dtype=torch.float32)
    return template


def _from_smplx(smplx, root: Path, model_file: Path, uv_file: Path | None) -> BodyTemplate:
    try:
        kwargs = {}
        if model_file.suffix == ".npz":  # smplx reads only pickles itself: hand it the arrays
            kwargs["data_struct"] = smplx.utils.Struct(**dict(np.load(model_file, allow_pickle=True)))
        body = smplx.create(str(root), model_type="smpl", gender="neutral", num_betas=10, **kwargs)
    except Exception as err:  # smplx raises bare asserts / KeyErrors on malformed files
        raise DataError(f"could not load SMPL model {model_file} ({type(err).__name__}: {err})",
                        f"expected {REQUIRED_SMPL_FILES}") from err
    faces = torch.as_tensor(np.asarray(body.faces, dtype=np.int64))
    vt = ft = None
    if uv_file is not None:
        mesh = read_obj(uv_file)
        vt, ft = mesh["vt"], mesh["ft"]
        check_same_topology(mesh["f"], faces, uv_file, "SMPL")
        if mesh["v"].shape[0] != body.v_template.shape[0]:
            raise DataError(f"{uv_file} has {mesh['v'].shape[0]} vertices but SMPL has "
                            f"{body.v_template.shape[0]}", "use the matching smpl_uv.obj")
        faces = mesh["f"]  # same triangles as SMPL's, in the order that ft follows
    return BodyTemplate(
        v_template=body.v_template.float(), faces=faces, vt=vt, ft=ft,
        shapedirs=body.shapedirs.float(), posedirs=body.posedirs.float(),
        J_regressor=body.J_regressor.float(), parents=body.parents.long(),
        lbs_weights=body.lbs_weights.float())


def check_same_topology(faces: torch.Tensor, ref_faces: torch.Tensor, path, what: str) -> None:
    """Raise DataError unless `faces` [F, 3] are `ref_faces` (each triangle the same vertices,
    any corner rotation, any order): counts alone would pass a different mesh."""
    if faces.shape != ref_faces.shape:
        raise DataError(f"{path} has {faces.shape[0]} triangles but {what} has "
                        f"{ref_faces.shape[0]}", f"use the mesh made for {what}")
    if int(faces.max()) >= int(ref_faces.max()) + 1 or int(faces.min()) < 0:
        raise DataError(f"{path} indexes vertices {what} does not have")
    mine = [tuple(t) for t in torch.sort(faces, dim=1).values.tolist()]
    theirs = {tuple(t) for t in torch.sort(ref_faces, dim=1).values.tolist()}
    # triangles of the reference that the mesh lacks (a rewired or repeated triangle each)
    differ = len(theirs - set(mine))
    if differ:
        raise DataError(f"{path}: {differ} of {faces.shape[0]} triangles are not {what}'s",
                        f"the UV mesh must have {what}'s vertex order and triangles")


def _read_same_mesh(path: Path, verts: torch.Tensor, faces: torch.Tensor, what: str
                    ) -> torch.Tensor:
    """Vertices of a mesh that must share `verts`/`faces`'s topology (a shrunk copy)."""
    mesh = read_obj(path, need_uv=False)
    if mesh["v"].shape != verts.shape:
        raise DataError(f"{path} has {mesh['v'].shape[0]} vertices but {what} has "
                        f"{verts.shape[0]}", f"the shrunk mesh must be a moved copy of {what}")
    check_same_topology(mesh["f"], faces, path, what)
    return mesh["v"]


# ------------------------------------------------------------------------- base (shell) mesh
@dataclass
class ShellBase:
    """The mesh that carries the shells and their UV layout (Sec. 3.1).

    Attributes:
        verts [Vb, 3], faces [Fb, 3], vt [T, 2], ft [Fb, 3]; shrunk [Vb, 3] or None (inner
        shells interpolate towards it; None = offsets along the normals). same_topology: the
        base is SMPL's own mesh (skinned with SMPL's weights directly); else it is skinned from
        SMPL's k nearest vertices as in the official code.
    """

    verts: torch.Tensor
    faces: torch.Tensor
    vt: torch.Tensor
    ft: torch.Tensor
    shrunk: torch.Tensor | None
    same_topology: bool

    def to(self, device) -> ShellBase:
        return ShellBase(**{k: v.to(device) if isinstance(v, torch.Tensor) else v
                            for k, v in vars(self).items()})


def load_shell_base(template: BodyTemplate, smpl_path: str = "", base_mesh: str = "",
                    shrunk_mesh: str = "") -> ShellBase:
    """The shell base mesh: SMPL's own UV mesh (base_mesh "") or an arbitrary UV mesh around it
    (official SHHQ/DeepFashion: `smpl_uv_no_hands_feet_ear.obj`), with its shrunk copy.

    Names are absolute or relative to smpl_path (`<smpl_path>/smpl/<name>` or
    `<smpl_path>/<name>`, the official `assets/` layout).
    """
    if (base_mesh or shrunk_mesh) and not smpl_path and not all(
            Path(n).is_absolute() for n in (base_mesh, shrunk_mesh) if n):
        raise UserError("relative base_mesh/shrunk_mesh names need smpl_path (the assets "
                        "folder)", "set --smpl_path, or give absolute paths, or leave them empty "
                        "for the procedural mannequin")
    if not base_mesh:
        if template.vt is None:
            raise MissingPathError("SMPL's UV layout is missing", "put smpl_uv.obj in smpl_path "
                                   "or set base_mesh")
        shrunk = template.v_shrunk
        if shrunk_mesh:
            shrunk = _read_same_mesh(find_asset(smpl_path, shrunk_mesh), template.v_template,
                                     template.faces, "SMPL's mesh")
        return ShellBase(template.v_template, template.faces, template.vt, template.ft, shrunk,
                         same_topology=True)
    path = find_asset(smpl_path, base_mesh)
    mesh = read_obj(path)
    check_uv_layout(mesh, path)
    _check_near_body(mesh["v"], template.v_template, path)
    shrunk = None
    if shrunk_mesh:
        shrunk = _read_same_mesh(find_asset(smpl_path, shrunk_mesh), mesh["v"], mesh["f"],
                                 f"the base mesh {path.name}")
    return ShellBase(mesh["v"], mesh["f"], mesh["vt"], mesh["ft"], shrunk, same_topology=False)


def check_uv_layout(mesh: dict, path) -> None:
    """Faces and UV faces must correspond beyond their counts: UVs inside [0, 1], and mostly
    non-degenerate UV triangles (a shuffled or foreign ft gives zero-area or flipped charts)."""
    vt, ft = mesh["vt"], mesh["ft"]
    if ft.shape != mesh["f"].shape:
        raise DataError(f"{path}: {ft.shape[0]} UV faces for {mesh['f'].shape[0]} faces")
    if vt.min() < -1e-3 or vt.max() > 1 + 1e-3:
        raise DataError(f"{path}: UVs outside [0, 1] ({float(vt.min()):.3g} .. "
                        f"{float(vt.max()):.3g})", "the texture stack covers [0, 1]^2")
    uv = vt[ft]  # [F, 3, 2]
    e1, e2 = uv[:, 1] - uv[:, 0], uv[:, 2] - uv[:, 0]
    area = (e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]).abs() / 2
    degenerate = float((area < 1e-10).float().mean())
    if degenerate > 0.05:
        raise DataError(f"{path}: {degenerate:.0%} of the UV triangles have zero area",
                        "the f v/vt pairs do not describe a UV layout of this mesh")
    # a UV layout of *this* mesh keeps most mesh edges continuous in UV: the two triangles on
    # an edge use the same two UV vertices there, except along the seams (a minority)
    shared = uv_edge_continuity(mesh["f"], ft)
    if shared < 0.5:
        raise DataError(f"{path}: only {shared:.0%} of the mesh edges are continuous in UV",
                        "the vt indices of the f lines do not describe a layout of this mesh")


def uv_edge_continuity(faces: torch.Tensor, ft: torch.Tensor) -> float:
    """Fraction of interior mesh edges whose two triangles share the edge's UV vertices too."""
    e = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])  # [3F, 2]
    t = torch.cat([ft[:, [0, 1]], ft[:, [1, 2]], ft[:, [2, 0]]])  # [3F, 2]
    swap = e[:, 0] > e[:, 1]
    e = torch.where(swap[:, None], e.flip(1), e)
    t = torch.where(swap[:, None], t.flip(1), t)
    key = e[:, 0] * (int(faces.max()) + 1) + e[:, 1]
    order = torch.argsort(key, stable=True)
    key, t = key[order], t[order]
    pair = key[1:] == key[:-1]  # consecutive entries of the same edge
    if not bool(pair.any()):
        return 1.0
    same = (t[1:] == t[:-1]).all(-1) & pair
    return float(same.sum()) / float(pair.sum())


def _check_near_body(verts: torch.Tensor, body: torch.Tensor, path) -> None:
    """The base mesh must lie on the body (same units and frame as SMPL's template)."""
    idx = torch.randperm(len(verts), generator=torch.Generator().manual_seed(0))[:2000]
    dist = torch.cdist(verts[idx], body).min(1).values
    median = float(dist.median())
    if median > 0.05:
        raise DataError(f"{path}: the mesh is {median:.3g} m (median) away from the SMPL "
                        "template", "the base mesh must be in SMPL's canonical pose and units")

"""Head models that decode (identity, expression) codes into meshes, and a small mesh renderer.

Shapes: B batch, T frames, V vertices, I identity-code size, E expression-code size.

FaceTalk (Sec. 3) decodes NPHM expression codes with the NPHM deformation network: vertices of
the identity's neutral mesh are moved by an MLP conditioned on the codes (NPHM's forward
deformation, cf. SimonGiebenhain/NPHM src/NPHM/models/reconstruction.py `deform_mesh`). NPHM's
weights cannot be shipped, so two heads share one interface:

* `ProceduralHead`: a linear blendshape head built procedurally (UV-sphere skull; identity
  shape basis; expression basis whose first components open the jaw, stretch/round the lips,
  raise the upper lip, raise the brows and close the eyes; remaining components are small smooth
  random deformations). Used by the synthetic data, the tests and the default eval.
* `NPHMHead`: a user-exported NPHM deformer (TorchScript) plus a neutral mesh (see README).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from .runtime import ConfigError, DataError, MissingPathError

# Named expression components of the procedural head (the rest are smooth random bases).
JAW, LIP_STRETCH, LIP_ROUND, UPPER_LIP, BROW, BLINK = range(6)
MOUTH_Y = -0.42  # mouth height on the unit-sphere template (before anisotropic scaling)
NUM_NAMED = 6


def _uv_sphere(rings: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit UV sphere, y up, +z facing the viewer: vertices [V, 3], triangles [F, 3]."""
    segs = 2 * rings
    theta = np.linspace(0, np.pi, rings + 2)[1:-1]  # polar angle, poles added separately
    phi = np.linspace(-np.pi, np.pi, segs, endpoint=False)
    th, ph = np.meshgrid(theta, phi, indexing="ij")  # [rings, segs]
    verts = np.stack([np.sin(th) * np.sin(ph), np.cos(th), np.sin(th) * np.cos(ph)], -1)
    verts = np.concatenate([verts.reshape(-1, 3), [[0, 1, 0], [0, -1, 0]]])
    top, bottom = rings * segs, rings * segs + 1
    faces = []
    for r in range(rings - 1):
        for s in range(segs):
            a, b = r * segs + s, r * segs + (s + 1) % segs
            c, d = a + segs, b + segs
            faces += [[a, c, b], [b, c, d]]
    for s in range(segs):
        faces.append([top, s, (s + 1) % segs])
        last = (rings - 1) * segs
        faces.append([bottom, last + (s + 1) % segs, last + s])
    return verts.astype(np.float32), np.asarray(faces, dtype=np.int64)


def _bump(points: np.ndarray, center: tuple[float, float, float], radius: float) -> np.ndarray:
    """Gaussian weight [V] of each point around `center`."""
    d2 = ((points - np.asarray(center)) ** 2).sum(-1)
    return np.exp(-d2 / (2 * radius**2))


class ProceduralHead(nn.Module):
    """Linear blendshape head: v(z_id, z_exp) = template + S z_id + X z_exp  (all linear).

    Args:
        id_dim: I, identity-code size.
        exp_dim: E >= 6, expression-code size.
        rings: latitude rings of the UV sphere (V = 2 rings^2 + 2).
        seed: seed of the random smooth bases (fixed, so a head is reproducible from its args).
    """

    def __init__(self, id_dim: int, exp_dim: int, rings: int = 24, seed: int = 0) -> None:
        super().__init__()
        if exp_dim < NUM_NAMED:
            raise ConfigError(f"procedural head needs data_exp_dim >= {NUM_NAMED}, got {exp_dim}")
        unit, faces = _uv_sphere(rings)
        rng = np.random.default_rng(seed)
        scale = np.array([0.8, 1.05, 0.9], dtype=np.float32)
        template = unit * scale
        front = np.clip(unit[:, 2], 0, 1)  # 1 on the face, 0 at the back
        mouth = (0.0, MOUTH_Y, float(np.sqrt(1 - MOUTH_Y**2)))
        # identity basis: smooth normal displacements (low-frequency trig patterns)
        id_basis = np.zeros((id_dim, len(unit), 3), np.float32)
        th, ph = np.arccos(unit[:, 1]), np.arctan2(unit[:, 0], unit[:, 2])
        for k in range(id_dim):
            a, b, c = rng.integers(0, 3, size=3)
            shift = rng.uniform(0, np.pi)
            field = np.cos(a * th + shift) * np.cos(b * ph) * (1 + 0.5 * c * front)
            id_basis[k] = 0.04 * field[:, None] * unit
        exp_basis = np.zeros((exp_dim, len(unit), 3), np.float32)
        below = 1 / (1 + np.exp(-(MOUTH_Y - unit[:, 1]) / 0.03))  # 1 under the mouth line
        jaw_w = below * front**2 * np.clip(1.6 - np.abs(unit[:, 0]) * 1.5, 0, 1)
        exp_basis[JAW] = jaw_w[:, None] * np.array([0.0, -0.25, -0.05])
        mouth_w = _bump(unit, mouth, 0.18)
        exp_basis[LIP_STRETCH] = mouth_w[:, None] * np.stack(
            [0.2 * unit[:, 0] / 0.3, np.zeros_like(front), np.zeros_like(front)], -1)
        exp_basis[LIP_ROUND] = mouth_w[:, None] * np.stack(
            [-0.3 * unit[:, 0], np.zeros_like(front), 0.08 * np.ones_like(front)], -1)
        above = 1 - below
        exp_basis[UPPER_LIP] = (mouth_w * above)[:, None] * np.array([0.0, 0.06, 0.02])
        brow_w = _bump(unit, (0.3, 0.38, 0.87), 0.14) + _bump(unit, (-0.3, 0.38, 0.87), 0.14)
        exp_basis[BROW] = brow_w[:, None] * np.array([0.0, 0.1, 0.0])
        eye_w = _bump(unit, (0.3, 0.18, 0.93), 0.08) + _bump(unit, (-0.3, 0.18, 0.93), 0.08)
        exp_basis[BLINK] = eye_w[:, None] * np.array([0.0, -0.05, -0.04])
        for k in range(NUM_NAMED, exp_dim):
            center = unit[rng.integers(len(unit))]
            direction = rng.normal(size=3)
            exp_basis[k] = 0.03 * _bump(unit, tuple(center), 0.3)[:, None] * direction
        self.register_buffer("template_vertices", torch.from_numpy(template))  # [V, 3]
        self.register_buffer("faces", torch.from_numpy(faces))  # [F, 3]
        self.register_buffer("id_basis", torch.from_numpy(id_basis))  # [I, V, 3]
        self.register_buffer("exp_basis", torch.from_numpy(exp_basis))  # [E, V, 3]
        dist = np.linalg.norm(unit - np.asarray(mouth), axis=-1)
        lip = dist <= max(0.25, np.sort(dist)[7])  # >= 8 lip vertices even on coarse meshes
        self.register_buffer("lip_indices", torch.from_numpy(np.nonzero(lip)[0]))
        upper = (unit[:, 1] > 0.1) & (unit[:, 2] > 0.3)
        self.register_buffer("upper_indices", torch.from_numpy(np.nonzero(upper)[0]))
        upper_lip = np.argmin(np.linalg.norm(unit - [0, MOUTH_Y + 0.07, mouth[2]], axis=-1))
        lower_lip = np.argmin(np.linalg.norm(unit - [0, MOUTH_Y - 0.07, mouth[2]], axis=-1))
        self.register_buffer("mouth_pair", torch.tensor([upper_lip, lower_lip]))
        colors = np.tile(np.array([[0.95, 0.78, 0.66]], np.float32), (len(unit), 1))  # skin
        lips = _bump(unit, mouth, 0.09) * front
        colors = colors * (1 - lips[:, None]) + lips[:, None] * np.array([0.8, 0.3, 0.3])
        slit = np.exp(-0.5 * ((unit[:, 1] - MOUTH_Y) / 0.02) ** 2) * (np.abs(unit[:, 0]) < 0.12)
        colors = colors * (1 - slit[:, None]) + slit[:, None] * np.array([0.25, 0.05, 0.05])
        dark = np.clip(brow_w * 1.3, 0, 1) * (unit[:, 1] > 0.34) + np.clip(eye_w * 1.5, 0, 1)
        colors = colors * (1 - dark[:, None].clip(0, 1)) + dark[:, None].clip(0, 1) * 0.2
        self.register_buffer("vertex_colors", torch.from_numpy(colors.astype(np.float32)))
        self.id_dim, self.exp_dim = id_dim, exp_dim

    def neutral(self, z_id: torch.Tensor) -> torch.Tensor:
        """Identity's neutral mesh: [B, I] -> [B, V, 3]."""
        return self.template_vertices + torch.einsum("bi,ivc->bvc", z_id, self.id_basis)

    def forward(self, z_exp: torch.Tensor, z_id: torch.Tensor) -> torch.Tensor:
        """Decode an expression sequence.

        Args:
            z_exp: [B, T, E] expression codes.
            z_id: [B, I] identity codes.
        Returns:
            [B, T, V, 3] vertices.
        """
        assert z_exp.shape[-1] == self.exp_dim, (z_exp.shape, self.exp_dim)
        assert z_id.shape[-1] == self.id_dim, (z_id.shape, self.id_dim)
        offsets = torch.einsum("bte,evc->btvc", z_exp, self.exp_basis)  # [B, T, V, 3]
        return self.neutral(z_id)[:, None] + offsets


class NPHMHead(nn.Module):
    """Decode codes through a user-exported NPHM forward deformer (TorchScript).

    Expected folder (`head_path`):
        deformer.pt   TorchScript module: forward(points [N, 3], z_id [I], z_exp [E]) -> [N, 3]
                      offsets (a wrapper around NPHM's forward deformation network).
        neutral.npz   per identity the neutral mesh is `vertices` [V, 3] (mesh extracted once from
                      the NPHM identity SDF with marching cubes), `faces` [F, 3], `lip_indices`,
                      `upper_indices` and `mouth_pair` (upper-, lower-lip vertex ids).
    """

    def __init__(self, head_path: str | Path, id_dim: int, exp_dim: int) -> None:
        super().__init__()
        root = Path(head_path)
        need = [root / "deformer.pt", root / "neutral.npz"]
        missing = [str(p) for p in need if not p.is_file()]
        if missing:
            raise MissingPathError(f"NPHM head needs {missing}",
                                   "head_path holds deformer.pt and neutral.npz, README")
        try:
            self.deformer = torch.jit.load(str(need[0]), map_location="cpu")
            data = np.load(need[1], allow_pickle=False)
        except (RuntimeError, ValueError, OSError, EOFError) as err:
            raise DataError(f"NPHM head files in {root} cannot be read ({type(err).__name__})",
                            "deformer.pt: TorchScript; neutral.npz: numpy arrays") from err
        keys = ["vertices", "faces", "lip_indices", "upper_indices", "mouth_pair"]
        absent = [k for k in keys if k not in data]
        if absent:
            raise DataError(f"{need[1]} lacks arrays {absent}", f"needs {keys}")
        self.register_buffer("template_vertices", torch.from_numpy(data["vertices"]).float())
        for k in keys[1:]:
            self.register_buffer(k, torch.from_numpy(data[k]).long())
        colors = data["colors"] if "colors" in data else np.full((len(data["vertices"]), 3), 0.8)
        self.register_buffer("vertex_colors", torch.from_numpy(np.asarray(colors)).float())
        self.id_dim, self.exp_dim = id_dim, exp_dim

    def neutral(self, z_id: torch.Tensor) -> torch.Tensor:
        return self.template_vertices.expand(z_id.shape[0], -1, -1)

    @torch.no_grad()
    def forward(self, z_exp: torch.Tensor, z_id: torch.Tensor) -> torch.Tensor:
        """[B, T, E], [B, I] -> [B, T, V, 3] by deforming the neutral mesh frame by frame."""
        assert z_exp.shape[-1] == self.exp_dim, (z_exp.shape, self.exp_dim)
        out = []
        for b in range(z_exp.shape[0]):
            frames = [self.template_vertices + self.deformer(self.template_vertices, z_id[b], e)
                      for e in z_exp[b]]
            out.append(torch.stack(frames))
        return torch.stack(out)


def build_head(name: str, id_dim: int, exp_dim: int, rings: int = 24, path: str = "") -> nn.Module:
    if name == "procedural":
        return ProceduralHead(id_dim, exp_dim, rings)
    if name == "nphm":
        return NPHMHead(path, id_dim, exp_dim)
    raise ConfigError(f"unknown head {name!r}", "head_name: procedural or nphm")


def mouth_opening(vertices: torch.Tensor, mouth_pair: torch.Tensor) -> torch.Tensor:
    """Upper-to-lower lip distance: [..., V, 3] -> [...]."""
    return (vertices[..., mouth_pair[0], :] - vertices[..., mouth_pair[1], :]).norm(dim=-1)


def render_mesh(vertices: np.ndarray, faces: np.ndarray, size: int = 160,
                colors: np.ndarray | None = None) -> np.ndarray:
    """Orthographic Lambert-shaded render (painter's algorithm), viewer on +z.

    Args:
        vertices: [V, 3]; faces: [F, 3]; colors: optional [V, 3] RGB in [0, 1].
    Returns:
        [size, size, 3] uint8 image.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure

    tri = vertices[faces]  # [F, 3, 3]
    albedo = (np.full((len(faces), 3), [0.95, 0.78, 0.66]) if colors is None
              else colors[faces].mean(1))  # [F, 3]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True) + 1e-12
    visible = normals[:, 2] > 0  # back-face culling
    order = np.argsort(tri[visible, :, 2].mean(-1))  # far to near
    tri, normals = tri[visible][order], normals[visible][order]
    albedo = albedo[visible][order]
    light = np.array([0.3, 0.4, 1.0]) / np.linalg.norm([0.3, 0.4, 1.0])
    shade = np.clip(normals @ light, 0.05, 1.0)[:, None]
    rgba = np.concatenate([(0.3 + 0.7 * shade) * albedo, np.ones_like(shade)], -1).clip(0, 1)
    fig = Figure(figsize=(size / 100, size / 100), dpi=100)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.add_collection(PolyCollection(tri[:, :, :2], facecolors=rgba, edgecolors=rgba,
                                 linewidths=0.3))
    ax.set_xlim(-1.1, 1.1)
    ax.set_ylim(-1.25, 1.15)
    ax.set_aspect("equal")
    ax.axis("off")
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()

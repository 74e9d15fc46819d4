"""Shell maps: inflated/deflated copies of a base mesh, barycentric Gaussian sites, and their
articulation with SMPL (Sec. 3.1-3.3).

Shapes: S shells, V base vertices, F base faces, T UV vertices, N Gaussians (sites) in total,
B batch, J joints, Vs / Fs SMPL vertices / faces, K nearest SMPL vertices.

Shell construction (official `get_shell_verts_from_base`): the outer S//2 + 1 shells are the base
displaced along its area-weighted vertex normals from +offset_out down to 0 (the base itself);
the inner shells interpolate from the base towards a *shrunk* copy of it at fractions
1/n_in .. 1 (0.5, 1.0 for 5 shells) when one is given (SHHQ/DeepFashion:
`smpl_uv_no_hands_feet_ear_shrunk.obj`), and only without one are deflated along the normals
down to -offset_in, which on thin limbs folds faces through the limb's axis: `flipped_faces`
counts that and `build_shell_stack` warns. All shells share the base's faces and UVs, so one
(face, barycentric) pair addresses the same UV on every shell.

Articulation: when the base is SMPL's own mesh, every shell vertex takes its template vertex's
blend shapes and skinning weights (`pose_shells`). An arbitrary UV base mesh (`ShellRig` in "knn"
mode, the official deformer) takes inverse-squared-distance-weighted skinning weights of its k = 5
nearest SMPL template vertices, and follows SMPL's shape and pose blend shapes through a fixed
correspondence: each base-shell vertex is a barycentric point plus a normal offset on its closest
triangle of the matching SMPL shell; posing runs SMPL on every SMPL shell, re-projects the base
shells onto the blend-shaped SMPL shells and skins them with the joint transforms.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from .template import BodyTemplate, ShellBase

FLIP_WARN_FRACTION = 0.01  # the official shrunk construction folds 0.1% of the innermost faces


def vertex_normals(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted vertex normals.

    Args:
        verts: [..., V, 3]. faces: [F, 3] long.
    Returns:
        [..., V, 3] unit normals (zero for isolated vertices).
    """
    v0, v1, v2 = (verts[..., faces[:, k], :] for k in range(3))  # [..., F, 3] each
    face_n = torch.cross(v1 - v0, v2 - v0, dim=-1)  # [..., F, 3], length = 2 * area
    normals = torch.zeros_like(verts)
    for k in range(3):
        normals = normals.index_add(-2, faces[:, k], face_n)
    return torch.nn.functional.normalize(normals, dim=-1, eps=1e-12)


def shell_offsets(num_shells: int, offset_out: float, offset_in: float,
                  device=None) -> torch.Tensor:
    """Signed normal offsets of the shells, outermost first: [S].

    The first S//2+1 shells go linearly from +offset_out to 0 (the template), the rest from 0 to
    -offset_in (exclusive of 0), as in the official code.
    """
    assert num_shells >= 1 and offset_out >= 0 and offset_in >= 0, (num_shells, offset_out, offset_in)
    n_out = num_shells // 2 + 1
    outer = torch.linspace(offset_out, 0.0, n_out, device=device)
    inner = torch.linspace(0.0, -offset_in, num_shells - n_out + 1, device=device)[1:]
    return torch.cat([outer, inner])


def build_shells(verts: torch.Tensor, faces: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Shell vertices [..., S, V, 3] = verts + offset_s * n(verts) (Sec. 3.1)."""
    normals = vertex_normals(verts, faces)  # [..., V, 3]
    return verts.unsqueeze(-3) + offsets[:, None, None] * normals.unsqueeze(-3)


def build_shell_stack(verts: torch.Tensor, faces: torch.Tensor, num_shells: int,
                      offset_out: float, offset_in: float,
                      shrunk: torch.Tensor | None = None) -> torch.Tensor:
    """Shell vertices [S, V, 3], outermost first, the official construction.

    Args:
        verts: [V, 3] base mesh. faces: [F, 3]. offset_out: outermost normal offset.
        offset_in: innermost normal deflation (used only without `shrunk`).
        shrunk: [V, 3] shrunk copy of the base; inner shells interpolate towards it.
    """
    n_out = num_shells // 2 + 1
    outer = build_shells(verts, faces, torch.linspace(offset_out, 0.0, n_out,
                                                      device=verts.device))  # [n_out, V, 3]
    n_in = num_shells - n_out
    if n_in == 0:
        return outer
    if shrunk is not None:
        assert shrunk.shape == verts.shape, (shrunk.shape, verts.shape)
        frac = torch.linspace(0.0, 1.0, n_in + 1, device=verts.device)[1:]  # 0.5, 1.0 for S=5
        inner = verts + frac[:, None, None] * (shrunk - verts)[None]  # [n_in, V, 3]
    else:
        offsets = torch.linspace(0.0, -offset_in, n_in + 1, device=verts.device)[1:]
        inner = build_shells(verts, faces, offsets)
    return torch.cat([outer, inner])


def flipped_faces(shells: torch.Tensor, faces: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Per shell, how many faces point against the same face of `ref` [V, 3]: [S] long."""
    def face_normals(v):
        return torch.cross(v[..., faces[:, 1], :] - v[..., faces[:, 0], :],
                           v[..., faces[:, 2], :] - v[..., faces[:, 0], :], dim=-1)
    return ((face_normals(shells) * face_normals(ref)).sum(-1) < 0).sum(-1)


def check_flips(shells: torch.Tensor, faces: torch.Tensor, ref: torch.Tensor, what: str
                ) -> torch.Tensor:
    """Count flipped faces per shell; warn when a shell folds more than 1% of its faces."""
    flips = flipped_faces(shells, faces, ref)
    worst = float(flips.max()) / faces.shape[0]
    if worst > FLIP_WARN_FRACTION:
        warnings.warn(f"{what}: the shells fold {flips.tolist()} of {faces.shape[0]} faces "
                      f"(worst {worst:.1%}): inner shells deflated along normals cross thin "
                      "limbs; give a shrunk reference mesh (shrunk_mesh) or a smaller offset_len",
                      stacklevel=2)
    return flips


def sample_sites(verts: torch.Tensor, faces: torch.Tensor, num_shells: int, num_points: int,
                 generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Fixed Gaussian sites: per shell, faces drawn by base-mesh area, uniform barycentrics.

    Args:
        verts: [V, 3] base mesh (the middle shell). faces: [F, 3].
        num_points: total N over all shells (N // S per shell).
    Returns:
        dict with `shell` [N] long, `face` [N] long, `bary` [N, 3] (rows sum to 1).
    """
    per_shell = num_points // num_shells
    assert per_shell > 0, f"num_gaussians={num_points} < num_shells={num_shells}"
    v, f = verts.cpu(), faces.cpu()
    areas = torch.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]], dim=-1).norm(dim=-1)
    face = torch.multinomial(areas.repeat(num_shells, 1), per_shell, replacement=True,
                             generator=generator).reshape(-1)  # [S * per_shell]
    shell = torch.arange(num_shells).repeat_interleave(per_shell)
    bary = random_barycentrics(face.shape[0], generator)
    return {"shell": shell, "face": face, "bary": bary}


def random_barycentrics(n: int, generator: torch.Generator | None = None,
                        device: torch.device | str | None = None) -> torch.Tensor:
    """[n, 3] uniform barycentrics: normalised uniform triples, as the official sampler."""
    uvw = torch.rand(n, 3, generator=generator, device=device)
    return uvw / uvw.sum(-1, keepdim=True)


def interpolate_sites(shell_verts: torch.Tensor, faces: torch.Tensor, shell: torch.Tensor,
                      face: torch.Tensor, bary: torch.Tensor) -> torch.Tensor:
    """Site positions from (possibly posed) shell vertices.

    Args:
        shell_verts: [B, S, V, 3]. faces: [F, 3]. shell, face: [N]. bary: [N, 3].
    Returns:
        [B, N, 3].
    """
    corners = shell_verts[:, shell[:, None], faces[face]]  # [B, N, 3, 3]
    return torch.einsum("bnkd,nk->bnd", corners, bary)


def site_uvs(vt: torch.Tensor, ft: torch.Tensor, face: torch.Tensor, bary: torch.Tensor
             ) -> torch.Tensor:
    """UV of each site: [N, 2] in [0, 1], the same on every shell (shared UV layout).

    Args: vt [T, 2], ft [F, 3] UV faces, face [N], bary [N, 3]."""
    return torch.einsum("nkd,nk->nd", vt[ft[face]], bary)


def pose_shells(template: BodyTemplate, canonical_shells: torch.Tensor, betas: torch.Tensor,
                body_pose: torch.Tensor, global_orient: torch.Tensor,
                transl: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear blend skinning of all shells with smplx's `lbs` (Sec. 3.3).

    Each shell vertex keeps the shape/pose blend shapes and skinning weights of its template
    vertex; joints are regressed from the template shell only. We call smplx.lbs.lbs once on the
    stacked shells with tiled blend shapes/weights and a J_regressor that reads the middle shell.

    Args:
        canonical_shells: [S, V, 3] unposed shells. betas: [B, 10]. body_pose: [B, 69] axis-angle.
        global_orient: [B, 3] axis-angle. transl: [B, 3] or None.
    Returns:
        posed shells [B, S, V, 3] and posed joints [B, J, 3].
    """
    from smplx.lbs import lbs

    num_shells, num_verts, _ = canonical_shells.shape
    batch = betas.shape[0]
    assert body_pose.shape == (batch, 69), body_pose.shape
    middle = num_shells // 2
    shapedirs = template.shapedirs[..., : betas.shape[1]].repeat(num_shells, 1, 1)  # [S*V, 3, Bt]
    posedirs = template.posedirs.reshape(207, 1, num_verts * 3).expand(207, num_shells, -1)
    regressor = torch.zeros(template.J_regressor.shape[0], num_shells, num_verts,
                            device=canonical_shells.device)
    regressor[:, middle] = template.J_regressor  # joints from the template (middle) shell
    verts, joints = lbs(
        betas, torch.cat([global_orient, body_pose], dim=1), canonical_shells.reshape(-1, 3),
        shapedirs, posedirs.reshape(207, -1), regressor.reshape(-1, num_shells * num_verts),
        template.parents, template.lbs_weights.repeat(num_shells, 1))
    if transl is not None:
        verts = verts + transl[:, None]
        joints = joints + transl[:, None]
    return verts.reshape(batch, num_shells, num_verts, 3), joints


# ---------------------------------------------------------------- arbitrary base mesh ("knn")
def knn_skinning_weights(points: torch.Tensor, body_verts: torch.Tensor,
                         lbs_weights: torch.Tensor, k: int = 5, chunk: int = 1024
                         ) -> torch.Tensor:
    """Skinning weights of arbitrary points from their k nearest body vertices (official
    `weights_from_k_closest_verts`, Shepard weights 1 / d^2 with d^2 clamped at 1e-8).

    Args: points [P, 3], body_verts [Vs, 3], lbs_weights [Vs, J]. Returns [P, J] (rows sum to 1).
    """
    out = []
    for start in range(0, len(points), chunk):
        d2 = torch.cdist(points[start:start + chunk], body_verts).square()  # [p, Vs]
        dist, idx = d2.topk(k, dim=1, largest=False)  # [p, K]
        w = dist.clamp(min=1e-8).reciprocal()
        w = w / w.sum(1, keepdim=True)
        out.append(torch.einsum("pk,pkj->pj", w, lbs_weights[idx]))
    return torch.cat(out)


def _point_segment_d2(p: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared distance of points p [n, 1, 3] to segments a-b [1, F, 3] -> [n, F]."""
    ab = b - a
    t = (((p - a) * ab).sum(-1) / (ab.square().sum(-1) + 1e-12)).clamp(0, 1)
    return (p - (a + t[..., None] * ab)).square().sum(-1)


def _barycentric(p: torch.Tensor, v0: torch.Tensor, v1: torch.Tensor, v2: torch.Tensor
                 ) -> torch.Tensor:
    """Barycentric coordinates [..., 3] of p's projection onto the plane of (v0, v1, v2)."""
    e0, e1, e2 = v1 - v0, v2 - v0, p - v0
    d00, d01, d11 = (e0 * e0).sum(-1), (e0 * e1).sum(-1), (e1 * e1).sum(-1)
    d20, d21 = (e2 * e0).sum(-1), (e2 * e1).sum(-1)
    denom = d00 * d11 - d01 * d01 + 1e-15  # the official epsilon
    w1 = (d11 * d20 - d01 * d21) / denom
    w2 = (d00 * d21 - d01 * d20) / denom
    return torch.stack([1 - w1 - w2, w1, w2], -1)


def _face_d2(p: torch.Tensor, tri: torch.Tensor, min_area: float) -> torch.Tensor:
    """Official point-to-triangle distance^2: to the plane when the projection falls inside a
    triangle of area >= min_area, else to the nearest of its three edges.

    Args: p [n, 1, 3] or [n, m, 3], tri [n or 1, m, 3, 3]. Returns [n, m]."""
    v0, v1, v2 = tri[..., 0, :], tri[..., 1, :], tri[..., 2, :]
    cross = torch.cross(v1 - v0, v2 - v0, dim=-1)
    normal = torch.nn.functional.normalize(cross, dim=-1)
    t = ((v0 - p) * normal).sum(-1)  # signed distance to the plane
    bary = _barycentric(p + t[..., None] * normal, v0, v1, v2)
    inside = ((bary.min(-1).values >= 0) & (bary.max(-1).values <= 1)
              & (cross.norm(dim=-1) / 2 >= min_area))
    edge = torch.minimum(torch.minimum(_point_segment_d2(p, v0, v1), _point_segment_d2(p, v0, v2)),
                         _point_segment_d2(p, v1, v2))
    return torch.where(inside, t.square(), edge)


def closest_faces(points: torch.Tensor, verts: torch.Tensor, faces: torch.Tensor,
                  chunk: int = 256, candidates: int = 48, min_area: float = 1e-5
                  ) -> torch.Tensor:
    """Index [P] of the closest triangle to each point (official `find_closest_face_idx`, the
    same distance), exact but pruned: each point tests the `candidates` triangles whose bounding
    spheres are nearest, and is checked by brute force when the next sphere could still hold a
    closer triangle."""
    tri = verts[faces]  # [F, 3, 3]
    centre = tri.mean(1)  # [F, 3]
    radius = (tri - centre[:, None]).norm(dim=-1).amax(1)  # [F]
    m = min(candidates, len(faces) - 1)
    out = []
    for start in range(0, len(points), chunk):
        p = points[start:start + chunk]  # [n, 3]
        lower = (torch.cdist(p, centre) - radius).clamp(min=0)  # [n, F] lower bounds
        bound, cand = lower.topk(m + 1, dim=1, largest=False)  # [n, m + 1]
        cand = cand[:, :m].sort(1).values  # ascending face index: ties go to the lower index
        d2 = _face_d2(p[:, None], tri[cand], min_area)  # [n, m]
        best_d2, best = d2.min(1)
        idx = cand.gather(1, best[:, None])[:, 0]
        unsure = best_d2.sqrt() > bound[:, m] - 1e-7  # a farther sphere might hold a closer face
        if unsure.any():
            full = _face_d2(p[unsure][:, None], tri[None], min_area)  # [u, F]
            idx[unsure] = full.argmin(1)
        out.append(idx)
    return torch.cat(out)


def _reference_closest_faces(points: torch.Tensor, verts: torch.Tensor, faces: torch.Tensor,
                             min_area: float = 1e-5) -> torch.Tensor:
    """Brute force over every triangle (for tests)."""
    return _face_d2(points[:, None], verts[faces][None], min_area).argmin(1)


def face_normals_unit(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Unit face normals [..., F, 3] of verts [..., V, 3]."""
    v0, v1, v2 = (verts[..., faces[:, k], :] for k in range(3))
    return torch.nn.functional.normalize(torch.cross(v1 - v0, v2 - v0, dim=-1), dim=-1, eps=1e-12)


def mesh_correspondence(points: torch.Tensor, verts: torch.Tensor, faces: torch.Tensor
                        ) -> dict[str, torch.Tensor]:
    """Each point as (closest triangle, barycentrics, offset along its unit normal) on a mesh
    (official `PointMeshCorrespondence`); `backproject` on the same mesh returns the points.

    Args: points [P, 3], verts [Vs, 3], faces [Fs, 3]. Returns face [P], bary [P, 3], offset [P].
    """
    face = closest_faces(points, verts, faces)
    tri = verts[faces[face]]  # [P, 3, 3]
    bary = _barycentric(points, tri[:, 0], tri[:, 1], tri[:, 2])
    proj = torch.einsum("pk,pkd->pd", bary, tri)
    offset = ((points - proj) * face_normals_unit(verts, faces)[face]).sum(-1)
    return {"face": face, "bary": bary, "offset": offset}


def backproject(verts: torch.Tensor, faces: torch.Tensor, face: torch.Tensor, bary: torch.Tensor,
                offset: torch.Tensor) -> torch.Tensor:
    """Points from a correspondence on (deformed) meshes verts [..., Vs, 3] -> [..., P, 3]."""
    tri = verts[..., faces[face], :]  # [..., P, 3, 3]
    normals = face_normals_unit(verts, faces)[..., face, :]  # [..., P, 3]
    return torch.einsum("pk,...pkd->...pd", bary, tri) + offset[:, None] * normals


class ShellRig(nn.Module):
    """Canonical shells of a base mesh and how they follow SMPL (Sec. 3.1-3.3).

    Holds only non-persistent buffers: everything is rebuilt from the (licensed) SMPL files and
    meshes, never saved in checkpoints. `pose` returns posed shells [B, S, V, 3] and joints.
    """

    def __init__(self, template: BodyTemplate, base: ShellBase, num_shells: int,
                 offset_out: float, offset_in: float, head_ids: torch.Tensor | None = None):
        super().__init__()
        self.num_shells = num_shells
        self.same_topology = base.same_topology
        buffers = {"faces": base.faces, "vt": base.vt, "ft": base.ft,
                   "shapedirs": template.shapedirs, "posedirs": template.posedirs,
                   "J_regressor": template.J_regressor, "parents": template.parents,
                   "lbs_weights": template.lbs_weights, "smpl_faces": template.faces}
        shells = build_shell_stack(base.verts, base.faces, num_shells, offset_out, offset_in,
                                   base.shrunk)  # [S, V, 3]
        self.flips = check_flips(shells, base.faces, base.verts, "base mesh shells")
        buffers["canonical_shells"] = shells
        if head_ids is None:  # vertices mostly skinned to the head joint (SMPL indices)
            from .template import HEAD_JOINT
            head_ids = torch.nonzero(template.lbs_weights.argmax(1) == HEAD_JOINT).squeeze(1)
        buffers["head_ids"] = head_ids.long()
        if not self.same_topology:
            buffers.update(self._knn_rig(template, shells, num_shells, offset_out, offset_in))
        for name, value in buffers.items():
            self.register_buffer(name, value, persistent=False)

    @staticmethod
    def _knn_rig(template: BodyTemplate, shells: torch.Tensor, num_shells: int,
                 offset_out: float, offset_in: float) -> dict[str, torch.Tensor]:
        """Official deformer set-up: SMPL's own shells (towards its shrunk mesh when given),
        skinning weights from the 5 nearest SMPL template vertices of every shell vertex, and
        each base-shell vertex's place on its SMPL shell."""
        smpl_shells = build_shell_stack(template.v_template, template.faces, num_shells,
                                        offset_out, offset_in, template.v_shrunk)  # [S, Vs, 3]
        skin, face, bary, offset = [], [], [], []
        for s in range(num_shells):
            skin.append(knn_skinning_weights(shells[s], template.v_template, template.lbs_weights))
            corr = mesh_correspondence(shells[s], smpl_shells[s], template.faces)
            face.append(corr["face"])
            bary.append(corr["bary"])
            offset.append(corr["offset"])
        return {"smpl_shells": smpl_shells, "skin": torch.stack(skin),  # [S, V, J]
                "corr_face": torch.stack(face), "corr_bary": torch.stack(bary),  # [S, V], [S, V, 3]
                "corr_offset": torch.stack(offset)}  # [S, V]

    def pose(self, betas: torch.Tensor, body_pose: torch.Tensor, global_orient: torch.Tensor
             ) -> dict[str, torch.Tensor]:
        """Posed shells `shell_verts` [B, S, V, 3], joints [B, J, 3] (of SMPL itself) and the
        posed SMPL head vertices `head_verts` [B, H, 3] (face crops)."""
        if self.same_topology:
            verts, joints = pose_shells(self, self.canonical_shells, betas, body_pose,
                                        global_orient)
            head = verts[:, self.num_shells // 2, self.head_ids]
            return {"shell_verts": verts, "joints": joints, "head_verts": head}
        return self._pose_knn(betas, torch.cat([global_orient, body_pose], 1))

    def _pose_knn(self, betas: torch.Tensor, full_pose: torch.Tensor) -> dict[str, torch.Tensor]:
        from smplx.lbs import batch_rigid_transform, batch_rodrigues, blend_shapes

        batch, num_shells, num_joints = betas.shape[0], self.num_shells, self.J_regressor.shape[0]
        v_shaped = self.smpl_shells[None] + blend_shapes(
            betas, self.shapedirs[..., : betas.shape[1]])[:, None]  # [B, S, Vs, 3]
        joints = torch.einsum("jv,bsvd->bsjd", self.J_regressor, v_shaped)  # [B, S, J, 3]
        rot = batch_rodrigues(full_pose.reshape(-1, 3)).reshape(batch, num_joints, 3, 3)
        eye = torch.eye(3, dtype=rot.dtype, device=rot.device)
        pose_offsets = ((rot[:, 1:] - eye).reshape(batch, -1) @ self.posedirs).reshape(
            batch, 1, -1, 3)  # [B, 1, Vs, 3]
        v_posed = v_shaped + pose_offsets  # [B, S, Vs, 3]
        posed_joints, transforms = batch_rigid_transform(
            rot.repeat_interleave(num_shells, 0), joints.reshape(-1, num_joints, 3),
            self.parents)  # [B*S, J, 3], [B*S, J, 4, 4]
        transforms = transforms.reshape(batch, num_shells, num_joints, 16)
        src = torch.stack([backproject(v_posed[:, s], self.smpl_faces, self.corr_face[s],
                                       self.corr_bary[s], self.corr_offset[s])
                           for s in range(num_shells)], 1)  # [B, S, V, 3]
        tmat = torch.einsum("svj,bsjk->bsvk", self.skin, transforms).reshape(
            batch, num_shells, -1, 4, 4)
        verts = (tmat[..., :3, :3] @ src[..., None])[..., 0] + tmat[..., :3, 3]
        mid = num_shells // 2
        head_t = torch.einsum("hj,bjk->bhk", self.lbs_weights[self.head_ids],
                              transforms[:, mid]).reshape(batch, -1, 4, 4)
        head = (head_t[..., :3, :3] @ v_posed[:, mid, self.head_ids, :, None])[..., 0] \
            + head_t[..., :3, 3]
        joints_out = posed_joints.reshape(batch, num_shells, num_joints, 3)[:, mid]
        return {"shell_verts": verts, "joints": joints_out, "head_verts": head}

"""Shell maps: offset copies of the template, barycentric Gaussian sites, and LBS (Sec. 3.1-3.2).

Shapes: S shells, V template vertices, F faces, T UV vertices, N Gaussians (sites) in total,
B batch, J joints.

The shells are the template displaced along its area-weighted vertex normals: the outer half
inflated up to `offset_out`, the inner half deflated down to `offset_in`, the middle shell being the
template itself (official `get_shell_verts_from_base`; SHHQ/DeepFashion use
offset_in = 1.25 * offset_out). All shells share the template's faces, UVs and skinning weights, so
the same (face, barycentric) pair addresses the same UV on every shell.
"""

from __future__ import annotations

import torch

from .template import BodyTemplate


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


def sample_sites(template: BodyTemplate, num_shells: int, num_points: int,
                 generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Fixed Gaussian sites: per shell, faces drawn by template area, uniform barycentrics.

    Args:
        num_points: total N over all shells (N // S per shell).
    Returns:
        dict with `shell` [N] long, `face` [N] long, `bary` [N, 3] (rows sum to 1).
    """
    per_shell = num_points // num_shells
    assert per_shell > 0, f"num_gaussians={num_points} < num_shells={num_shells}"
    v = template.v_template
    f = template.faces
    areas = torch.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]], dim=-1).norm(dim=-1)
    face = torch.multinomial(areas.repeat(num_shells, 1), per_shell, replacement=True,
                             generator=generator).reshape(-1)  # [S * per_shell]
    shell = torch.arange(num_shells).repeat_interleave(per_shell)
    bary = random_barycentrics(face.shape[0], generator)
    return {"shell": shell, "face": face, "bary": bary}


def random_barycentrics(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """[n, 3] uniform barycentrics: normalised uniform triples, as the official sampler."""
    uvw = torch.rand(n, 3, generator=generator)
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


def site_uvs(template: BodyTemplate, face: torch.Tensor, bary: torch.Tensor) -> torch.Tensor:
    """UV of each site: [N, 2] in [0, 1], the same on every shell (shared UV layout)."""
    return torch.einsum("nkd,nk->nd", template.vt[template.ft[face]], bary)


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

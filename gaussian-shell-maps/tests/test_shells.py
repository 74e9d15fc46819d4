import math
import os

import pytest
import torch

from gaussian_shell_maps import shells as sh


def _axis_angle_y(angle, batch=1):
    return torch.tensor([[0.0, angle, 0.0]]).repeat(batch, 1)


def test_identity_pose_returns_canonical_shells(template):
    offsets = sh.shell_offsets(3, 0.05, 0.0625)
    canon = sh.build_shells(template.v_template, template.faces, offsets)
    posed, joints = sh.pose_shells(template, canon, torch.zeros(1, 10), torch.zeros(1, 69),
                                   torch.zeros(1, 3))
    torch.testing.assert_close(posed[0], canon, atol=1e-5, rtol=0)  # float32 LBS round-off
    torch.testing.assert_close(joints[0], template.joints(), atol=1e-5, rtol=0)


def test_root_rotation_rotates_all_points_about_the_root(template):
    canon = sh.build_shells(template.v_template, template.faces, sh.shell_offsets(3, 0.05, 0.06))
    angle = 0.7
    posed, _ = sh.pose_shells(template, canon, torch.zeros(1, 10), torch.zeros(1, 69),
                              _axis_angle_y(angle))
    root = template.joints()[0]
    c, s = math.cos(angle), math.sin(angle)
    rot = torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    expected = (canon - root) @ rot.T + root
    torch.testing.assert_close(posed[0], expected, atol=1e-5, rtol=0)


def test_shell_offsets_layout_and_middle_shell_is_template(template):
    offsets = sh.shell_offsets(5, 0.05, 0.0625)
    torch.testing.assert_close(offsets, torch.tensor([0.05, 0.025, 0.0, -0.03125, -0.0625]))
    canon = sh.build_shells(template.v_template, template.faces, offsets)
    torch.testing.assert_close(canon[2], template.v_template)
    normals = sh.vertex_normals(template.v_template, template.faces)
    # each vertex moves along its own normal by exactly the shell offset
    disp = ((canon[0] - template.v_template) * normals).sum(-1)
    torch.testing.assert_close(disp, torch.full_like(disp, 0.05))


def test_shells_keep_uv_correspondence(template, rng):
    canon = sh.build_shells(template.v_template, template.faces, sh.shell_offsets(3, 0.05, 0.06))
    face = torch.randint(template.faces.shape[0], (50,), generator=rng)
    bary = sh.random_barycentrics(50, rng)
    uv = sh.site_uvs(template.vt, template.ft, face, bary)
    pts = [sh.interpolate_sites(canon[None], template.faces, torch.full((50,), k), face, bary)[0]
           for k in range(3)]
    # same (face, bary) on another shell: same UV, and the point is displaced ~ along the normal
    normals = sh.vertex_normals(template.v_template, template.faces)
    n_site = torch.nn.functional.normalize(torch.einsum("nkd,nk->nd", normals[template.faces[face]],
                                                        bary), dim=-1)
    cos = torch.nn.functional.cosine_similarity(pts[0] - pts[1], n_site, dim=-1)
    assert (cos > 0.9).all(), cos.min()
    assert uv.min() >= 0 and uv.max() <= 1
    torch.testing.assert_close(sh.site_uvs(template.vt, template.ft, face, bary), uv)


def test_sample_sites_per_shell_and_barycentrics(template, rng):
    sites = sh.sample_sites(template.v_template, template.faces, 5, 500, rng)
    assert sites["face"].shape == (500,)
    assert torch.equal(torch.bincount(sites["shell"]), torch.full((5,), 100))
    torch.testing.assert_close(sites["bary"].sum(-1), torch.ones(500))
    assert (sites["bary"] >= 0).all()


# ------------------------------------------------------- official shell construction (issue 25)
def test_inner_shells_interpolate_towards_the_shrunk_mesh(template):
    v, f, shrunk = template.v_template, template.faces, template.v_shrunk
    shells = sh.build_shell_stack(v, f, 5, 0.05, 0.0625, shrunk)
    normals = sh.vertex_normals(v, f)
    torch.testing.assert_close(shells[2], v)
    torch.testing.assert_close(((shells[0] - v) * normals).sum(-1), torch.full((len(v),), 0.05))
    torch.testing.assert_close(shells[3], v + 0.5 * (shrunk - v))  # official fractions 0.5, 1.0
    torch.testing.assert_close(shells[4], shrunk)


def test_flip_guard_counts_and_warns_only_for_the_normal_fallback(template):
    import warnings

    v, f = template.v_template, template.faces
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the shrunk construction must not warn
        shrunk_flips = sh.check_flips(sh.build_shell_stack(v, f, 5, 0.05, 0.0625,
                                                           template.v_shrunk), f, v, "t")
    assert shrunk_flips.tolist() == [0, 0, 0, 0, 0]
    with pytest.warns(UserWarning, match="fold"):
        flips = sh.check_flips(sh.build_shell_stack(v, f, 5, 0.05, 0.0625), f, v, "t")
    # deflating 6.25 cm along normals folds thin limbs (r = 3-5.5 cm) through their axis
    assert flips[-1] > 0.2 * len(f) and flips[:3].sum() == 0


def test_inner_shells_lie_inside_the_base(template):
    v, f = template.v_template, template.faces
    shells = sh.build_shell_stack(v, f, 5, 0.05, 0.0625, template.v_shrunk)
    normals = sh.vertex_normals(v, f)
    for k in (3, 4):
        depth = ((shells[k] - v) * normals).sum(-1)
        assert (depth < 0).all(), (k, depth.max())


def test_closest_faces_pruned_search_equals_brute_force(template, rng):
    verts, faces = template.v_template, template.faces
    pts = verts[torch.randint(len(verts), (300,), generator=rng)]
    pts = pts + 0.04 * torch.randn(300, 3, generator=rng)
    torch.testing.assert_close(sh.closest_faces(pts, verts, faces, candidates=8),
                               sh._reference_closest_faces(pts, verts, faces))


def test_correspondence_backprojects_points_exactly(template, rng):
    verts, faces = template.v_template, template.faces
    pts = verts[:200] + 0.03 * torch.randn(200, 3, generator=rng)
    corr = sh.mesh_correspondence(pts, verts, faces)
    back = sh.backproject(verts, faces, corr["face"], corr["bary"], corr["offset"])
    torch.testing.assert_close(back, pts, atol=1e-5, rtol=0)  # float32 projections


def test_knn_skinning_weights_at_a_vertex_are_that_vertex(template):
    w = sh.knn_skinning_weights(template.v_template[:50], template.v_template, template.lbs_weights)
    torch.testing.assert_close(w.sum(1), torch.ones(50))
    # d^2 clamped at 1e-8 vs neighbours ~1 cm away: the vertex itself carries > 99.9%
    torch.testing.assert_close(w, template.lbs_weights[:50], atol=2e-3, rtol=0)


def test_knn_rig_rest_pose_returns_the_canonical_shells(knn_rig):
    _, _, rig = knn_rig
    out = rig.pose(torch.zeros(2, 10), torch.zeros(2, 69), torch.zeros(2, 3))
    torch.testing.assert_close(out["shell_verts"][1], rig.canonical_shells, atol=1e-5, rtol=0)
    assert not rig.same_topology and rig.flips.sum() == 0


def test_knn_rig_poses_a_submesh_like_smpl_itself(knn_rig, rng):
    """The stand-in base mesh is a subset of the mannequin's vertices: its middle shell, posed
    through nearest-vertex weights + correspondence, must land where SMPL puts those vertices."""
    from gaussian_shell_maps.data import random_pose

    template, base, rig = knn_rig
    pose, betas = random_pose(3, rng), torch.randn(3, 10, generator=rng) * 0.5
    orient = torch.randn(3, 3, generator=rng) * 0.5
    out = rig.pose(betas, pose, orient)
    smpl = sh.pose_shells(template, template.v_template[None], betas, pose, orient)[0][:, 0]
    dist, near = torch.cdist(base.verts, template.v_template).topk(2, largest=False)
    unique = dist[:, 1] > 1e-6  # capsules meeting at a joint share coincident ring vertices
    assert unique.float().mean() > 0.8
    err = (out["shell_verts"][:, 2] - smpl[:, near[:, 0]]).norm(dim=-1)[:, unique]
    assert err.max() < 2e-3, err.max()  # knn weights differ from the vertex's by < 0.2%
    torch.testing.assert_close(out["joints"], sh.pose_shells(
        template, template.v_template[None], betas, pose, orient)[1], atol=1e-5, rtol=0)


def test_knn_rig_root_rotation_rotates_every_shell_about_the_root(knn_rig):
    template, _, rig = knn_rig
    angle = 0.7
    out = rig.pose(torch.zeros(1, 10), torch.zeros(1, 69), _axis_angle_y(angle))
    # official: SMPL runs on every SMPL shell, so each shell turns about its own regressed root
    root = (template.J_regressor[0] @ rig.smpl_shells)[:, None]  # [S, 1, 3]
    c, s = math.cos(angle), math.sin(angle)
    rot = torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    torch.testing.assert_close(out["shell_verts"][0], (rig.canonical_shells - root) @ rot.T + root,
                               atol=1e-5, rtol=0)


ASSETS = os.environ.get("GSM_ASSETS", "")  # the official repository's assets/ folder


@pytest.mark.skipif(not os.path.isfile(os.path.join(ASSETS, "smpl", "smpl_uv_no_hands_feet_ear"
                                                    "_shrunk.obj")), reason="GSM_ASSETS not set")
def test_official_assets_give_sane_shells_and_uv_mask():
    from gaussian_shell_maps.model import load_uv_mask, rasterize_uv_mask
    from gaussian_shell_maps.template import check_uv_layout, read_obj

    base = read_obj(os.path.join(ASSETS, "smpl", "smpl_uv_no_hands_feet_ear.obj"))
    shrunk = read_obj(os.path.join(ASSETS, "smpl", "smpl_uv_no_hands_feet_ear_shrunk.obj"))
    check_uv_layout(base, "official base")
    v, f = base["v"], base["f"]
    shells = sh.build_shell_stack(v, f, 5, 0.05, 0.0625, shrunk["v"])
    flips = sh.flipped_faces(shells, f, v)
    assert flips[-1] < 0.005 * len(f), flips  # 0.1% measured; normals alone fold 46%
    normals = sh.vertex_normals(v, f)
    assert ((shells[4] - v) * normals).sum(-1).mean() < -0.01  # ~2.3 cm inside on average
    mask_png = os.path.join(ASSETS, "smpl", "mask_uv.png")
    png = load_uv_mask(mask_png, 512) > 0.5
    ours = rasterize_uv_mask(base["vt"], base["ft"], 512) > 0.5
    assert (png & ours).sum() / (png | ours).sum() > 0.95  # measured 0.98

import math

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

import math

import torch

from eye_radiance.geometry import (
    D_S,
    R_C,
    R_L,
    axis_angle_error_deg,
    fit_ellipse,
    intersect_cornea,
    iris_coords,
    pose_from_mask,
    refine_pose,
    reflect,
    rodrigues,
)
from eye_radiance.scene import pinhole_dirs


def _pose(z=400.0):
    c = torch.tensor([[0.0, 0.0, z]], dtype=torch.float64)
    g = torch.tensor([[0.0, 0.0, -1.0]], dtype=torch.float64)
    return c, g


def test_apex_ray_reflects_straight_back():
    c, g = _pose()
    d = torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64)
    hit = intersect_cornea(torch.zeros_like(d), d, c, g)
    assert hit["hit"].item()
    # apex = sphere centre + R_C * g, i.e. the limbus plane + (R_C - D_S)
    torch.testing.assert_close(hit["t"], torch.tensor([400.0 - (R_C - D_S)], dtype=torch.float64))
    torch.testing.assert_close(reflect(d, hit["normals"]), -d)


def test_reflection_law_on_random_rays():
    gen = torch.Generator().manual_seed(0)
    n = 500
    c = torch.tensor([[3.0, -2.0, 400.0]], dtype=torch.float64).expand(n, 3)
    g = torch.nn.functional.normalize(
        torch.tensor([[0.1, 0.05, -1.0]], dtype=torch.float64), dim=-1
    )
    g = g.expand(n, 3)
    target = c + 4 * (torch.rand(n, 3, generator=gen, dtype=torch.float64) - 0.5)
    d = torch.nn.functional.normalize(target, dim=-1)
    hit = intersect_cornea(torch.zeros_like(d), d, c, g)
    assert hit["hit"].float().mean() > 0.5
    r = reflect(d, hit["normals"])[hit["hit"]]
    nrm, dd = hit["normals"][hit["hit"]], d[hit["hit"]]
    torch.testing.assert_close(r.norm(dim=-1), torch.ones(len(r), dtype=torch.float64))
    # angle of incidence = angle of reflection, and r lies in the plane of d and n
    torch.testing.assert_close((-dd * nrm).sum(-1), (r * nrm).sum(-1))
    torch.testing.assert_close(
        (torch.linalg.cross(dd, nrm) * r).sum(-1),
        torch.zeros(len(r), dtype=torch.float64),
        atol=1e-9,
        rtol=0,
    )
    # hit points lie on the sphere
    s = c[hit["hit"]] - g[hit["hit"]] * D_S
    torch.testing.assert_close(
        (hit["points"][hit["hit"]] - s).norm(dim=-1),
        torch.full((len(r),), R_C, dtype=torch.float64),
    )


def test_rays_missing_the_cap_are_masked():
    c, g = _pose()
    dirs = torch.nn.functional.normalize(
        torch.tensor(
            [
                [0.0, 0.0, 1.0],  # apex: hit
                [R_L * 0.999 / 400, 0.0, 1.0],  # just inside the limbus: hit
                [7.5 / 400, 0.0, 1.0],  # hits the sphere outside the limbus (sclera side): masked
                [20 / 400, 0.0, 1.0],  # misses the sphere: masked
            ],
            dtype=torch.float64,
        ),
        dim=-1,
    )
    hit = intersect_cornea(torch.zeros_like(dirs), dirs, c.expand(4, 3), g.expand(4, 3))
    assert hit["hit"].tolist() == [True, True, False, False]
    behind = intersect_cornea(torch.zeros(1, 3, dtype=torch.float64), -dirs[:1], c, g)
    assert not behind["hit"].item()  # the cornea behind the ray origin is not hit


def test_intersection_and_reflection_gradcheck():
    c, g = _pose()
    d = torch.nn.functional.normalize(
        torch.tensor([[0.004, -0.003, 1.0]], dtype=torch.float64), dim=-1
    )

    def f(cc, gg):
        hit = intersect_cornea(torch.zeros_like(d), d, cc, gg / gg.norm(dim=-1, keepdim=True))
        return reflect(d, hit["normals"]), iris_coords(hit["points"], cc, gg)

    assert torch.autograd.gradcheck(f, (c.clone().requires_grad_(), g.clone().requires_grad_()))


def test_rodrigues_matches_matrix_exponential():
    omega = torch.tensor([[0.3, -0.2, 0.5], [0.0, 0.0, 0.0], [1e-6, 0, 0]], dtype=torch.float64)
    skew = torch.zeros(3, 3, 3, dtype=torch.float64)
    skew[:, 0, 1], skew[:, 0, 2], skew[:, 1, 2] = -omega[:, 2], omega[:, 1], -omega[:, 0]
    skew = skew - skew.transpose(1, 2)
    torch.testing.assert_close(rodrigues(omega), torch.linalg.matrix_exp(skew))


def test_ellipse_fit_and_pose_recover_a_rendered_limbus():
    # principal point shifted so that the 200 x 200 image is a crop around the eye
    k = torch.tensor([[3000.0, 0, -800], [0, 3000.0, 400], [0, 0, 1]], dtype=torch.float64)
    # an eye off the optical axis looking at the camera (the ambiguity-resolving assumption)
    c = torch.tensor([120.0, -40.0, 400.0], dtype=torch.float64)
    to_cam = -c / c.norm()
    tilt = math.radians(15)  # turned 15 degrees from looking at the camera, towards -x
    side = torch.nn.functional.normalize(
        torch.linalg.cross(to_cam, torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)), dim=0
    )
    g = math.cos(tilt) * to_cam + math.sin(tilt) * side
    dirs = pinhole_dirs(k, 200, 200).reshape(-1, 3)
    # mask of the limbus disc: rays whose hit on the limbus plane lies within R_L
    t = (c @ g) / (dirs @ g)
    on_plane = dirs * t[:, None]
    mask = ((on_plane - c).norm(dim=-1) <= R_L).reshape(200, 200)
    ellipse = fit_ellipse(mask)
    assert ellipse["b"] < ellipse["a"]
    c_est, g_est = pose_from_mask(mask, k)
    assert (c_est - c).norm() < 4.0  # mm: weak-perspective distance from a ~40 px radius
    assert axis_angle_error_deg(g_est, g) < 3.0
    assert abs(axis_angle_error_deg(g_est, to_cam) - 15.0) < 3.0
    assert fit_ellipse(torch.zeros(10, 10, dtype=torch.bool)) is None


def test_refine_pose_identity_and_rotation():
    c, g = _pose()
    c2, g2 = refine_pose(c, g, torch.zeros(1, 6, dtype=torch.float64))
    torch.testing.assert_close(c2, c)
    torch.testing.assert_close(g2, g)
    delta = torch.tensor([[0.0, math.radians(10), 0.0, 1.0, 0.0, 0.0]], dtype=torch.float64)
    c3, g3 = refine_pose(c, g, delta)
    assert abs(axis_angle_error_deg(g3, g).item() - 10.0) < 1e-6
    torch.testing.assert_close(c3, c + torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64))

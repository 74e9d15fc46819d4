import math

import torch

from eye_radiance.cornea import (
    ELLIPSOID,
    LIMBUS_RADIUS_OFFICIAL,
    apex_positions,
    cap_normals,
    erode,
    initial_depth,
    intersect_cap,
    iris_texture_coords,
    limbus_plane_coords,
    mask_limbus_official,
    reflect,
    so3_exp,
    spherical_cap,
    trace_cornea,
)

D = torch.float64


def _cap_point(z, phi, cap=ELLIPSOID):
    r = torch.sqrt(2 * cap.radius * z - cap.p * z**2)
    return torch.stack([r * torch.cos(phi), r * torch.sin(phi), z], -1)


def test_limbus_radius_closed_form():
    assert abs(ELLIPSOID.limbus_radius - math.sqrt(2 * 7.8 * 2.18 - 0.75 * 2.18**2)) < 1e-12
    assert abs(ELLIPSOID.limbus_radius - LIMBUS_RADIUS_OFFICIAL) < 2e-3  # the official constant
    sphere = spherical_cap()
    assert sphere.p == 1.0 and abs(sphere.limbus_radius - LIMBUS_RADIUS_OFFICIAL) < 1e-12


def test_apex_ray_hits_apex_and_reflects_back():
    o = torch.tensor([[0.0, 0.0, -400.0]], dtype=D)
    d = torch.tensor([[0.0, 0.0, 1.0]], dtype=D)
    t, p, hit = intersect_cap(o, d)
    assert hit.item() and abs(t.item() - 400.0) < 1e-9
    n = cap_normals(p)
    torch.testing.assert_close(n, torch.tensor([[0.0, 0.0, -1.0]], dtype=D))
    torch.testing.assert_close(reflect(d, n), -d)


def test_rays_aimed_at_cap_points_hit_them_with_gradient_normals():
    """Rays from the camera towards points of the cap surface (parametrised in closed form) hit
    exactly those points; normals equal the normalised gradient of the quadric."""
    gen = torch.Generator().manual_seed(0)
    for cap in (ELLIPSOID, spherical_cap()):
        z = torch.rand(200, generator=gen, dtype=D) * cap.t_max * 0.999
        pts = _cap_point(z, torch.rand(200, generator=gen, dtype=D) * 2 * math.pi, cap)
        origin = torch.tensor([3.0, -2.0, -400.0], dtype=D).expand(200, 3)
        t, p, hit = intersect_cap(origin, pts - origin, cap)
        assert hit.all()
        torch.testing.assert_close(p, pts)
        q = pts.clone().requires_grad_(True)
        f = q[:, 0] ** 2 + q[:, 1] ** 2 + cap.p * q[:, 2] ** 2 - 2 * cap.radius * q[:, 2]
        (grad,) = torch.autograd.grad(f.sum(), q)
        torch.testing.assert_close(cap_normals(pts, cap), grad / grad.norm(dim=-1, keepdim=True))


def test_sphere_option_matches_geometric_sphere():
    cap = spherical_cap()
    gen = torch.Generator().manual_seed(1)
    o = torch.tensor([0.5, 0.2, -50.0], dtype=D).expand(100, 3)
    d = torch.nn.functional.normalize(torch.tensor([0.0, 0.0, 1.0], dtype=D)
                                      + 0.08 * torch.randn(100, 3, generator=gen, dtype=D), dim=-1)
    t, p, hit = intersect_cap(o, d, cap)
    centre = torch.tensor([0.0, 0.0, cap.radius], dtype=D)
    oc = o - centre
    b = (oc * d).sum(-1)
    t_ref = -b - torch.sqrt(b**2 - (oc * oc).sum(-1) + cap.radius**2)
    torch.testing.assert_close(t[hit], t_ref[hit])
    torch.testing.assert_close(cap_normals(p[hit], cap), (p[hit] - centre) / cap.radius)


def test_reflection_differs_between_ellipsoid_and_sphere_towards_the_rim():
    pts = _cap_point(torch.tensor([0.05, 2.0], dtype=D), torch.zeros(2, dtype=D))
    d = torch.tensor([[0.0, 0.0, 1.0]], dtype=D).expand(2, 3)
    ell = reflect(d, cap_normals(pts))
    sph = reflect(d, cap_normals(pts, spherical_cap()))
    angle = torch.rad2deg(torch.acos((ell * sph).sum(-1).clamp(-1, 1)))
    assert angle[0] < 0.2 and angle[1] > 3.0  # same at the apex, degrees apart near the limbus


def test_rays_beyond_the_limbus_or_missing_are_masked():
    o = torch.tensor([0.0, 0.0, -400.0], dtype=D).expand(3, 3)
    r = LIMBUS_RADIUS_OFFICIAL
    targets = torch.tensor([[0.99 * r, 0, 2.0], [6.0, 0, 3.0], [20.0, 0, 0]], dtype=D)
    _, _, hit = intersect_cap(o, targets - o)
    assert hit.tolist() == [True, False, False]


def test_trace_rotation_is_about_the_apex():
    """Rotating the cornea about its apex and the ray about the same point gives the rotated
    hit; the apex itself never moves."""
    apex = torch.tensor([[10.0, -5.0, 400.0]], dtype=D)
    rot = so3_exp(torch.tensor([[0.1, -0.2, 0.05]], dtype=D))
    d = torch.nn.functional.normalize(apex + torch.tensor([[1.0, 0.5, 0.0]], dtype=D), dim=-1)
    out = trace_cornea(d, apex, rot)
    p_c = rot[0].T @ (out["points"][0] - apex[0])  # back in the cornea frame
    x, y, z = p_c
    assert abs(float(x**2 + y**2 + 0.75 * z**2 - 2 * 7.8 * z)) < 1e-9 and out["hit"].item()
    at_apex = trace_cornea(apex / apex.norm(), apex, torch.eye(3, dtype=D)[None])
    torch.testing.assert_close(at_apex["points"], apex)


def test_trace_cornea_gradcheck():
    d = torch.nn.functional.normalize(torch.tensor([[0.004, -0.003, 1.0]], dtype=D), dim=-1)

    def f(apex, omega):
        out = trace_cornea(d * 400, apex, so3_exp(omega))
        return out["reflected"], out["eye_coords"]

    apex = torch.tensor([[0.5, -1.0, 400.0]], dtype=D, requires_grad=True)
    omega = torch.tensor([[0.02, 0.01, -0.03]], dtype=D, requires_grad=True)
    assert torch.autograd.gradcheck(f, (apex, omega))


def test_limbus_plane_lookup_closed_form():
    o = torch.tensor([[0.0, 0.0, -400.0]], dtype=D)
    d = torch.tensor([[2.75, -5.5, 402.18]], dtype=D)  # meets z = 2.18 at (2.75, -5.5)
    torch.testing.assert_close(limbus_plane_coords(o, d), torch.tensor([[0.5, -1.0]], dtype=D))
    coords = torch.tensor([[0.0, 0.0], [math.sqrt(2), -2.0]], dtype=D)
    torch.testing.assert_close(iris_texture_coords(coords),
                               torch.tensor([[0.5, 0.5], [1.0, 0.0]], dtype=D))


def test_so3_exp_matches_matrix_exponential():
    omega = torch.tensor([[0.3, -0.2, 0.5], [0.0, 0.0, 0.0], [1e-6, 0, 0]], dtype=D)
    skew = torch.zeros(3, 3, 3, dtype=D)
    skew[:, 0, 1], skew[:, 0, 2], skew[:, 1, 2] = -omega[:, 2], omega[:, 1], -omega[:, 0]
    torch.testing.assert_close(so3_exp(omega), torch.linalg.matrix_exp(skew - skew.transpose(1, 2)))


def test_apex_parametrisation_depth_moves_along_the_centre_ray():
    one = torch.ones(1, dtype=D)
    centre = torch.tensor([[700.0, 200.0]], dtype=D)
    args = (centre, 400 * one, 1000 * one, 1000 * one, 1000 * one, 500 * one)
    a0 = apex_positions(*args, 0 * one, torch.zeros(1, 2, dtype=D))
    a1 = apex_positions(*args, 0.02 * one, torch.zeros(1, 2, dtype=D))  # +20 mm
    torch.testing.assert_close(a0, torch.tensor([[80.0, -20.0, 400.0]], dtype=D))
    torch.testing.assert_close(a1 / a1[:, 2:], a0 / a0[:, 2:])  # same pixel ray
    assert abs(float(a1[0, 2] - 420.0)) < 1e-9
    a2 = apex_positions(*args, 0 * one, torch.tensor([[1.5, -0.5]], dtype=D))
    torch.testing.assert_close(a2 - a0, torch.tensor([[1.5, -0.5, 0.0]], dtype=D))


def test_official_mask_limbus_and_depth_on_a_disc():
    yy, xx = torch.meshgrid(torch.arange(101), torch.arange(121), indexing="ij")
    disc = (xx - 60) ** 2 + (yy - 50) ** 2 <= 30**2
    cx, cy, r = mask_limbus_official(disc)
    assert (cx, cy) == (60.0, 50.0) and r == 30.0
    depth = initial_depth(torch.tensor(r), torch.tensor(3000.0))
    assert abs(float(depth) - LIMBUS_RADIUS_OFFICIAL * 100) < 1e-4
    assert mask_limbus_official(torch.zeros(5, 5, dtype=torch.bool)) is None


def test_erode_matches_a_reference_loop():
    gen = torch.Generator().manual_seed(0)
    mask = torch.rand(12, 15, generator=gen) > 0.25
    for size in (3, 4):
        fast = erode(mask, size)
        lo = (size - 1) // 2
        ref = torch.zeros_like(mask)
        for i in range(12):
            for j in range(15):
                window = [mask[a, b] for a in range(i - lo, i - lo + size)
                          for b in range(j - lo, j - lo + size) if 0 <= a < 12 and 0 <= b < 15]
                ref[i, j] = all(window)  # outside the image counts as foreground (OpenCV)
        assert torch.equal(fast, ref), size

import math

import torch
from torch import nn

from eye_radiance.geometry import (
    axis_angle_error_deg,
    intersect_cornea,
    iris_coords,
    refine_pose,
    reflect,
    sphere_center,
)
from eye_radiance.losses import photometric_loss, radial_prior, rotate_uv
from eye_radiance.scene import _reference_trace_scene, iris_texture, make_scene, trace_scene


def test_vectorised_trace_matches_reference_loop():
    gen = torch.Generator().manual_seed(0)
    scene = make_scene(gen)
    origins = torch.tensor([[0.0, 0.0, 400.0]], dtype=torch.float64).expand(200, 3) + torch.randn(
        200, 3, generator=gen, dtype=torch.float64
    )
    dirs = torch.nn.functional.normalize(
        torch.randn(200, 3, generator=gen, dtype=torch.float64) * 0.4
        + torch.tensor([0.0, 0.0, -1.0], dtype=torch.float64),
        dim=-1,
    )
    fast = trace_scene(scene, origins, dirs)
    slow = torch.tensor(
        [_reference_trace_scene(scene, o.tolist(), d.tolist()) for o, d in zip(origins, dirs)],
        dtype=torch.float64,
    )
    torch.testing.assert_close(fast, slow)
    assert (fast != fast[0]).any()  # rays see different things


class _Radial(nn.Module):
    def forward(self, uv, eye):
        r = uv.norm(dim=-1, keepdim=True)
        return torch.cat([r, r**2, torch.cos(3 * r)], dim=-1)


class _Angular(nn.Module):
    def forward(self, uv, eye):
        return torch.cat([uv, uv[:, :1] * uv[:, 1:]], dim=-1)


def test_radial_prior_zero_for_symmetric_texture_positive_otherwise():
    gen = torch.Generator().manual_seed(0)
    uv = torch.rand(256, 2, generator=gen) * 2 - 1
    eye = torch.zeros(256, dtype=torch.int64)
    assert radial_prior(_Radial(), uv, eye, gen).item() < 1e-10
    assert radial_prior(_Angular(), uv, eye, gen).item() > 1e-2


def test_rotate_uv_closed_form():
    uv = torch.tensor([[1.0, 0.0]])
    torch.testing.assert_close(
        rotate_uv(uv, torch.tensor([math.pi / 2])), torch.tensor([[0.0, 1.0]]), atol=1e-7, rtol=0
    )


def test_photometric_loss_ignores_missed_rays():
    pred = torch.tensor([[0.0, 0, 0], [1.0, 1, 1]])
    target = torch.zeros(2, 3)
    assert photometric_loss(pred, target, torch.tensor([True, False])).item() == 0.0
    assert photometric_loss(pred, target, torch.tensor([True, True])).item() == 0.5


def test_pose_refinement_recovers_a_known_perturbation():
    """Render a cornea (smooth environment + iris) with the true pose; start from a pose 4 degrees
    and ~0.4 mm off; gradient descent on the photometric loss through intersection, reflection
    and iris lookup must shrink the sphere-centre and axis errors."""

    def env(d):
        return 0.5 + 0.5 * torch.stack(
            [torch.sin(4 * d[:, 0]), torch.cos(3 * d[:, 1]), torch.sin(2 * d[:, 0] + 3 * d[:, 1])],
            1,
        )

    c_true = torch.tensor([2.0, -1.0, 400.0], dtype=torch.float64)
    g_true = torch.nn.functional.normalize(
        torch.tensor([0.05, -0.03, -1.0], dtype=torch.float64), dim=0
    )
    lin = torch.linspace(-4.5, 4.5, 24, dtype=torch.float64)
    yy, xx = torch.meshgrid(lin, lin, indexing="ij")
    target_pts = c_true + torch.stack([xx, yy, torch.zeros_like(xx)], -1).reshape(-1, 3)
    dirs = torch.nn.functional.normalize(target_pts, dim=-1)
    n = len(dirs)

    def render(c, g):
        cc, gg = c.expand(n, 3), g.expand(n, 3)
        hit = intersect_cornea(torch.zeros_like(dirs), dirs, cc, gg)
        iris = iris_texture(iris_coords(hit["points"], cc, gg), angular=0.3)
        return env(reflect(dirs, hit["normals"])) + iris, hit["hit"]

    target, hit_true = render(c_true, g_true)
    axis = torch.nn.functional.normalize(torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64), dim=0)
    delta_true = torch.cat(
        [axis * math.radians(4), torch.tensor([0.3, -0.2, 0.2], dtype=torch.float64)]
    )
    c0, g0 = refine_pose(c_true, g_true, delta_true)
    delta = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=1e-2)
    for _ in range(800):
        c, g = refine_pose(c0, g0, delta)
        pred, hit = render(c, g)
        loss = photometric_loss(pred, target, hit & hit_true)
        opt.zero_grad()
        loss.backward()
        opt.step()
    c_fin, g_fin = refine_pose(c0, g0, delta.detach())
    # the reflection fixes the sphere centre; the iris pattern fixes the axis about it
    centre_before = (sphere_center(c0, g0) - sphere_center(c_true, g_true)).norm().item()
    centre_after = (sphere_center(c_fin, g_fin) - sphere_center(c_true, g_true)).norm().item()
    before = axis_angle_error_deg(g0, g_true).item()
    after = axis_angle_error_deg(g_fin, g_true).item()
    assert centre_after < 0.1 * centre_before, (centre_before, centre_after)
    assert after < 0.1 * before, (before, after)

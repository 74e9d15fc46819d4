import math

import torch

from gaussian_shell_maps import metrics as M


def test_fid_and_kid_are_zero_for_identical_sets_and_grow_with_shift(rng):
    a = torch.randn(200, 8, generator=rng)
    assert abs(M.fid(a, a)) < 1e-6
    b = a + 1.0
    assert abs(M.fid(a, b) - 8.0) < 1e-4  # pure mean shift: ||mu_a - mu_b||^2
    # KID is unbiased: ~0 (up to subset noise) for one distribution, clearly positive otherwise
    assert abs(M.kid(a, a, num_subsets=20)) < 0.1 * M.kid(a, b, num_subsets=20)


def test_standin_features_are_deterministic(rng):
    img = torch.rand(4, 3, 32, 32, generator=rng) * 2 - 1
    f1, f2 = M.RandomConvFeatures()(img), M.RandomConvFeatures()(img)
    assert f1.shape == (4, 256)
    torch.testing.assert_close(f1, f2)


def test_pck():
    pred = torch.zeros(1, 4, 2)
    target = torch.tensor([[[0.0, 0.5], [0.0, 2.0], [1.0, 0.0], [3.0, 4.0]]])
    assert M.pck(pred, target, 1.0) == 0.5


def test_reprojection_consistency_of_a_flat_textured_plane():
    # a fronto-parallel plane at z=2 seen by two cameras translated along x: perfectly consistent
    h = w = 16
    K = torch.tensor([[16.0, 0, 8], [0, 16.0, 8], [0, 0, 1]])
    xs = torch.arange(w) + 0.5
    tex = lambda x_world: torch.sin(3 * x_world)
    view_a, view_b = torch.eye(4), torch.eye(4)
    view_b[0, 3] = -0.1  # camera B is 0.1 to the right
    x_world_a = (xs - 8) / 16 * 2
    img_a = tex(x_world_a)[None, None].expand(3, h, w).clone()
    img_b = tex((xs - 8) / 16 * 2 + 0.1)[None, None].expand(3, h, w).clone()
    depth = torch.full((1, h, w), 2.0)
    psnr = M.reprojection_consistency(img_a, depth, torch.ones(1, h, w), img_b, depth, view_a,
                                      view_b, K)
    assert psnr > 30


def test_claim_fid_curve_records_untrained_checkpointed_and_final_points(tmp_path):
    from conftest import SMALL, TINY

    from gaussian_shell_maps.claim import fid_curve

    result = fid_curve(tmp_path / "gan", TINY, 0, 2, 1, tuple(SMALL))
    assert [c["step"] for c in result["curve"]] == [0, 1, 2]
    values = [c["fid"] for c in result["curve"]] + [result["floor"]["fid"]]
    assert all(math.isfinite(v) and v >= 0 for v in values)
    # the untrained generator is not a perfect sampler: above the real-vs-real floor
    assert result["curve"][0]["fid"] > result["floor"]["fid"]

import torch

from facetalk import metrics as M


def test_lve_matches_reference_and_closed_form(gen):
    pred, gt = torch.randn(5, 12, 3, generator=gen), torch.randn(5, 12, 3, generator=gen)
    lips = torch.tensor([0, 3, 7])
    assert abs(M.lip_vertex_error(pred, gt, lips) - M._reference_lip_vertex_error(pred, gt, lips)) < 1e-5
    shifted = gt.clone()
    shifted[:, 3, 1] += 0.5
    assert abs(M.lip_vertex_error(shifted, gt, lips) - 0.25) < 1e-7  # max squared distance
    assert M.lip_vertex_error(gt, gt, lips) == 0.0


def test_fdd_and_diversity(gen):
    neutral = torch.zeros(4, 3)
    still = torch.zeros(6, 4, 3)
    moving = still.clone()
    moving[::2, 0, 0] = 1.0  # squared displacement alternates 0/1 -> std 0.5
    upper = torch.tensor([0, 1])
    assert M.fdd(moving, moving, neutral, upper) == 0.0
    assert abs(M.fdd(still, moving, neutral, upper) - 0.25) < 1e-7  # (0.5 + 0) / 2
    same = torch.randn(1, 6, 4, 3, generator=gen).expand(4, -1, -1, -1)
    assert M.diversity(same) == 0.0
    two = torch.stack([still, still + torch.tensor([0.0, 3.0, 4.0])])
    assert abs(M.diversity(two) - 5.0) < 1e-6


def test_pearson():
    x = torch.arange(10.0)
    assert abs(M.pearson(x, 2 * x + 1) - 1) < 1e-9 and abs(M.pearson(x, -x) + 1) < 1e-9
    assert M.pearson(x, torch.ones(10)) == 0.0

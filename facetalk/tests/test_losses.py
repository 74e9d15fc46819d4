import torch

from facetalk.losses import (
    _reference_velocity_loss,
    lip_vertex_loss,
    reconstruction_loss,
    velocity_loss,
)


def test_velocity_matches_reference_and_ignores_offsets(gen):
    a, b = torch.randn(3, 7, 5, generator=gen), torch.randn(3, 7, 5, generator=gen)
    torch.testing.assert_close(velocity_loss(a, b), _reference_velocity_loss(a, b))
    assert float(velocity_loss(a, a + 3.0)) < 1e-10  # constant offset has zero velocity error
    assert float(reconstruction_loss(a, a + 3.0)) == 9.0


def test_velocity_gradcheck():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2, 4, 3, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(2, 4, 3, dtype=torch.float64, generator=g)
    assert torch.autograd.gradcheck(lambda x: velocity_loss(x, b), (a,))


def test_lip_vertex_loss_closed_form():
    pred = torch.zeros(1, 2, 5, 3)
    gt = pred.clone()
    gt[..., 1, 0] = 2.0  # one lip vertex off by 2 on x
    lips = torch.tensor([1, 3])
    assert float(lip_vertex_loss(pred, gt, lips)) == 2.0  # (4 + 0) / 2

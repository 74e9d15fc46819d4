import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vl2v_adip.losses import (
    _reference_alignment_loss,
    alignment_loss,
    clip_contrastive_loss,
    cutmix_alignment_loss,
    cutmix_box,
    kd_loss,
)


def test_alignment_zero_for_identical_normalised(rng):
    e = F.normalize(torch.randn(5, 8, generator=rng), dim=-1)
    assert float(alignment_loss(e, e, e, 0.5)) == pytest.approx(0.0, abs=1e-6)
    # scale does not matter (cosine)
    assert float(alignment_loss(3 * e, e, e, 0.3)) == pytest.approx(0.0, abs=1e-6)


def test_alignment_hand_value():
    p = torch.tensor([[1.0, 0.0]])
    v = torch.tensor([[0.0, 2.0]])  # cos 0
    t = torch.tensor([[1.0, 1.0]])  # cos 1/sqrt2
    lmd = 0.25
    hand = lmd * (1 - 0.0) + (1 - lmd) * (1 - 1 / math.sqrt(2))
    assert float(alignment_loss(p, v, t, lmd)) == pytest.approx(hand, rel=1e-6)


def test_alignment_matches_reference_forward_backward(rng):
    p = torch.randn(6, 4, generator=rng, dtype=torch.float64, requires_grad=True)
    v, t = torch.randn(6, 4, generator=rng, dtype=torch.float64), torch.randn(
        6, 4, generator=rng, dtype=torch.float64)
    a, b = alignment_loss(p, v, t, 0.7), _reference_alignment_loss(p, v, t, 0.7)
    torch.testing.assert_close(a, b)
    ga, = torch.autograd.grad(a, p)
    gb, = torch.autograd.grad(b, p)
    torch.testing.assert_close(ga, gb)
    assert torch.autograd.gradcheck(lambda q: alignment_loss(q, v, t, 0.7), (p,))


def test_cutmix_loss_is_lam_mixture(rng):
    p, v, ta, tb = (torch.randn(3, 4, generator=rng) for _ in range(4))
    mixed = cutmix_alignment_loss(p, v, ta, tb, 0.3, 0.5)
    hand = 0.3 * alignment_loss(p, v, ta, 0.5) + 0.7 * alignment_loss(p, v, tb, 0.5)
    torch.testing.assert_close(mixed, hand)
    y1, y2, x1, x2, lam = cutmix_box(32, 32, 0.5, np.random.default_rng(0))
    assert lam == pytest.approx(1 - (y2 - y1) * (x2 - x1) / 1024)


def test_kd_loss_hand_computation():
    s = torch.tensor([[1.0, 2.0, 0.0]])
    t = torch.tensor([[2.0, 0.0, 1.0]])
    T = 2.0
    ps = np.exp(s.numpy()[0] / T) / np.exp(s.numpy()[0] / T).sum()
    pt = np.exp(t.numpy()[0] / T) / np.exp(t.numpy()[0] / T).sum()
    hand = T**2 * float((pt * np.log(pt / ps)).sum())
    assert float(kd_loss(s, t, T)) == pytest.approx(hand, rel=1e-5)
    assert float(kd_loss(t, t, T)) == pytest.approx(0.0, abs=1e-6)


def test_kd_matches_torch_kl_div(rng):
    s, t = torch.randn(4, 5, generator=rng), torch.randn(4, 5, generator=rng)
    ref = F.kl_div(F.log_softmax(s / 3, -1), F.log_softmax(t / 3, -1), log_target=True,
                   reduction="batchmean") * 9
    torch.testing.assert_close(kd_loss(s, t, 3.0), ref)


def test_clip_contrastive_identity_and_match(rng):
    e = F.normalize(torch.randn(4, 8, generator=rng), dim=-1)
    low = clip_contrastive_loss(e, e, torch.tensor(100.0))
    high = clip_contrastive_loss(e, e.flip(0), torch.tensor(100.0))
    assert float(low) < 1e-3 < float(high)
    # with an all-ones match matrix every caption is right: loss = log(B) for equal logits
    z = torch.zeros(4, 8)
    z[:, 0] = 1
    assert float(clip_contrastive_loss(z, z, torch.tensor(1.0), torch.ones(4, 4))) == \
        pytest.approx(math.log(4), rel=1e-5)

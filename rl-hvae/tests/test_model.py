import pytest
import torch

from rl_hvae.losses import elbo_loss, rl_loss
from rl_hvae.model import HierarchicalVAE, HVAEArch
from rl_hvae.released import ReleasedHVAE


def test_shapes_per_level(any_model, digits_batch):
    p = any_model(digits_batch)
    assert p.logits.shape == digits_batch.shape
    shapes = [tuple(z.shape[1:]) for z in p.z]
    assert shapes == [(8, 4, 4), (64,), (32,), (16,), (8,)]
    assert len(p.posteriors) == len(p.priors) == 5


@pytest.mark.parametrize("net", [HierarchicalVAE, ReleasedHVAE])
def test_paper_architecture_on_28x28(net):
    model = net(HVAEArch(image_size=28))
    p = model(torch.rand(2, 1, 28, 28).bernoulli())
    assert p.logits.shape == (2, 1, 28, 28)
    assert p.z[0].shape == (2, 8, 14, 14)
    assert [z.shape[1] for z in p.z[1:]] == [64, 32, 16, 8]


def test_bad_strides_rejected():
    with pytest.raises(ValueError, match="divisible"):
        HVAEArch(image_size=10, stage_strides=(2, 2, 1, 1, 1))
    with pytest.raises(ValueError, match="one entry per latent level"):
        HVAEArch(stage_strides=(2, 2))


@pytest.mark.parametrize("objective", ["elbo", "rl"])
def test_every_parameter_gets_finite_gradient(any_model, digits_batch, objective):
    if objective == "elbo":
        loss, _ = elbo_loss(any_model, digits_batch)
    else:
        loss, _ = rl_loss(any_model, digits_batch, t=0, gamma=0.9)
    loss.backward()
    for name, param in any_model.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name


def test_batched_inference_equals_per_example(any_model, digits_batch):
    any_model.eval()
    posts, _ = any_model.infer(digits_batch, use_mode=True)
    for i in range(3):
        single, _ = any_model.infer(digits_batch[i:i + 1], use_mode=True)
        for a, b in zip(posts, single):
            torch.testing.assert_close(a.mean[i:i + 1], b.mean)


def test_prior_samples_shape(any_model):
    assert any_model.sample(3).shape == (3, 1, 8, 8)

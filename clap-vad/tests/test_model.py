import torch

from clap_vad.model import ScorerConfig, SnippetScorer


def test_shapes_range_and_batch_invariance():
    torch.manual_seed(0)
    model = SnippetScorer(ScorerConfig(16, 32, 8)).eval()
    x = torch.rand(5, 3, 16)
    y = model(x)
    assert y.shape == (5,) and ((y > 0) & (y < 1)).all()
    single = torch.cat([model(x[i:i + 1]) for i in range(5)])
    torch.testing.assert_close(y, single)


def test_crop_mean_of_scores():
    model = SnippetScorer(ScorerConfig(16, 32, 8)).eval()
    x = torch.rand(2, 4, 16)
    per_crop = torch.stack([model(x[:, c:c + 1]) for c in range(4)], dim=1)  # [B, C]
    torch.testing.assert_close(model(x), per_crop.mean(dim=1))


def test_backward_finite_and_attention_option():
    for attention in (False, True):
        model = SnippetScorer(ScorerConfig(16, 32, 8, attention=attention))
        loss = torch.nn.functional.binary_cross_entropy(model(torch.rand(6, 2, 16)), torch.ones(6))
        loss.backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_state_dict_round_trip():
    a = SnippetScorer(ScorerConfig(16, 32, 8)).eval()
    b = SnippetScorer(ScorerConfig(16, 32, 8)).eval()
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.rand(3, 2, 16)
    assert torch.equal(a(x), b(x))

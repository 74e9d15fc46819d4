"""FedProx proximal term (fl_strategy = "fedprox"): mu/2 ||w - w_global||^2 added to the local BCE."""

import copy
import itertools

import numpy as np
import torch

from clap_vad.data import SyntheticSpec, make_synthetic
from clap_vad.model import ScorerConfig, SnippetScorer
from clap_vad.participant import LocalOptim, Participant


def _setup():
    train, _ = make_synthetic(SyntheticSpec(num_scenes=1, num_events=1, train_videos_per_scene=4,
                                            feature_dim=6, num_crops=2, min_snippets=8,
                                            max_snippets=8), seed=0)
    torch.manual_seed(0)
    model = SnippetScorer(ScorerConfig(6, 8, 4, dropout=0.0))
    labels = (np.arange(32) % 3 == 0).astype(np.float32)
    return train, model, labels


def _train(train, model, labels, mu, epochs=1, batch_size=16, lr=0.5):
    part = Participant(train, LocalOptim(epochs=epochs, batch_size=batch_size, lr=lr,
                                         proximal_mu=mu, shuffle=False), 0, 0)
    assert part.num_snippets == 32
    local = copy.deepcopy(model)
    part.train(local, labels, 1, torch.device("cpu"))
    return part, torch.cat([p.detach().flatten() for p in local.parameters()])


def test_two_steps_closed_form():
    """Step 1 starts at w_global (prox gradient 0); step 2 adds lr * mu * (w1 - w_global)."""
    train, model, labels = _setup()
    lr, mu = 0.5, 0.7
    part, plain = _train(train, model, labels, 0.0, lr=lr)
    _, prox = _train(train, model, labels, mu, lr=lr)
    first = copy.deepcopy(model)  # w1 by hand: one SGD step on the first 16 snippets
    loss = torch.nn.functional.binary_cross_entropy(first(part.x[:16]), torch.from_numpy(labels[:16]))
    grads = torch.autograd.grad(loss, list(first.parameters()))
    delta = torch.cat([-lr * g.flatten() for g in grads])  # w1 - w_global
    torch.testing.assert_close(prox, plain - lr * mu * delta, rtol=0, atol=1e-6)
    assert delta.abs().max() > 1e-3  # the check is not vacuous


def test_stronger_mu_stays_closer_to_the_global_model():
    train, model, labels = _setup()
    start = torch.cat([p.detach().flatten() for p in model.parameters()])
    dist = [float((_train(train, model, labels, mu, epochs=5)[1] - start).norm())
            for mu in (0.0, 0.3, 1.0, 3.0)]
    assert all(a > b for a, b in itertools.pairwise(dist)), dist

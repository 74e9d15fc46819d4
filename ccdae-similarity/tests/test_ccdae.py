import math

import numpy as np
import pytest
import torch

from ccdae_similarity import ccdae, data, world
from ccdae_similarity.ccdae import ScoreOptions, score_pairs
from ccdae_similarity.modalities import WorldImageModality, WorldTextModality


def _differing_prefix(g1, g2, c):
    return sum(a != b for a, b in zip(g1[:c], g2[:c]))


def test_curve_closed_form(fake_modality):
    """Fake likelihood: d_c = number of differing levels among the first c (exactly)."""
    opts = ScoreOptions(weighting="uniform")
    pairs = [(0, 1), (2, 3), (4, 5), (0, 0)]
    for (i, j), s in zip(pairs, score_pairs(pairs, fake_modality, opts)):
        g1, g2 = fake_modality.graphs[i], fake_modality.graphs[j]
        expected = [_differing_prefix(g1, g2, c) for c in range(world.LEVELS + 1)]
        np.testing.assert_allclose(s.curve, expected)
        assert s.auc == pytest.approx(np.trapezoid(expected) / world.LEVELS)
        assert s.similarity == -s.auc


def test_auc_trapezoid_hand_curve():
    c, d = [0, 1, 2, 3, 4], [0.0, 1.0, 1.0, 3.0, 5.0]
    # trapezoids: 0.5 + 1 + 2 + 4 = 7.5
    assert ccdae.area_under_curve(c, d, "none") == pytest.approx(7.5)
    assert ccdae.area_under_curve(c, d, "range") == pytest.approx(7.5 / 4)
    # a failed (NaN) level is skipped: trapezoid over 0,1,3,4 = 0.5 + 4 + 4 = 8.5
    assert ccdae.area_under_curve(c, [0, 1, math.nan, 3, 5], "none") == pytest.approx(8.5)
    assert math.isnan(ccdae.area_under_curve(c, [0, math.nan, math.nan, math.nan, math.nan]))


def test_importance_weights_closed_form():
    w = ccdae.description_weights(np.array([1.0, 3.0]), np.array([2.0, 0.0]), "importance", 1.0)
    expected = np.array([np.exp(-2.0), 3.0]) / (np.exp(-2.0) + 3.0)
    np.testing.assert_allclose(w, expected)
    np.testing.assert_allclose(ccdae.description_weights(np.array([1., 3.]), np.zeros(2),
                                                         "uniform", 1.0), [0.25, 0.75])


def test_separation_and_explanation(fake_modality):
    g = list(fake_modality.graphs[0])
    other = list(g)
    other[3] = (g[3] + 1) % 4  # first difference at level 3 -> separates at c = 4
    fake_modality.graphs += [tuple(g), tuple(other)]
    s = score_pairs([(6, 7)], fake_modality, ScoreOptions(weighting="uniform"))[0]
    assert s.curve[:4] == [0, 0, 0, 0] and s.curve[4] == 1
    assert s.separation_complexity == 4
    a, b = s.explanation["separating_descriptions"]
    assert a.split()[3] != b.split()[3] and a.split()[:3] == b.split()[:3]


def test_failed_level_is_reported_not_zero(fake_modality):
    fake_modality.empty_at = 3
    s = score_pairs([(0, 1)], fake_modality, ScoreOptions(weighting="uniform"))[0]
    assert s.failed_levels == [3]
    assert math.isnan(s.curve[3])
    assert math.isfinite(s.auc)


def test_budget_violation_and_bad_pairs_raise(fake_modality):
    class Greedy(type(fake_modality)):
        def describe(self, idx, budget, n, temperature, seed):
            return [[tuple(world.graph_words(self.graphs[i]))] * n for i in idx]

    with pytest.raises(ValueError, match="budget"):
        score_pairs([(0, 1)], Greedy(fake_modality.graphs), ScoreOptions())
    with pytest.raises(ValueError, match="two sample"):
        score_pairs([(0, 1, 2)], fake_modality, ScoreOptions())


def _image_modality(system, n=4, seed=0):
    rng = np.random.default_rng(seed)
    samples = [world.Sample(world.random_graph(rng), world.random_nuisance(rng)) for _ in range(n)]
    images = data.render_samples(samples, 16, 0.03)
    images[-1] = images[0]  # an identical copy of sample 0
    return WorldImageModality(system, images, data.description_vocab(), elbo_timesteps=3)


@pytest.mark.parametrize("likelihood", ["decoder", "encoder"])
def test_identical_zero_symmetric_and_batched_equals_reference(tiny_system, likelihood):
    mod = _image_modality(tiny_system)
    opts = ScoreOptions(max_complexity=3, samples=2, likelihood=likelihood)
    s01, s10, s03 = score_pairs([(0, 1), (1, 0), (0, 3)], mod, opts)
    np.testing.assert_allclose(s03.curve, 0.0, atol=1e-4)  # identical samples: d(c) = 0
    np.testing.assert_allclose(s01.curve, s10.curve, rtol=1e-5, atol=1e-4)  # symmetric
    ref = ccdae._reference_score_pair(0, 1, mod, opts)
    np.testing.assert_allclose(s01.curve, ref.curve, rtol=1e-4, atol=1e-3)


def test_world_describers_respect_budget(tiny_system):
    mod = _image_modality(tiny_system)
    texts = ["one red circle on the left in the day", "three big blue boxes at night"]
    tmod = WorldTextModality(tiny_system, texts, data.description_vocab(), data.text_vocab())
    for m, idx in ((mod, [0, 1, 2]), (tmod, [0, 1])):
        for c in range(1, 7):
            for descs in m.describe(idx, c, 3, 1.0, 0):
                assert len(descs) == 3 and all(len(h) <= c for h in descs)


def test_descriptions_do_not_depend_on_batch(tiny_system):
    mod = _image_modality(tiny_system)
    alone = mod.describe([2], 4, 3, 1.0, 7)[0]
    batched = mod.describe([0, 1, 2], 4, 3, 1.0, 7)[2]
    assert alone == batched


def test_empty_text_rejected(tiny_system):
    with pytest.raises(ValueError, match="empty text"):
        WorldTextModality(tiny_system, ["a red circle", "  "], data.description_vocab(),
                          data.text_vocab())


def test_image_modality_shape_check(tiny_system):
    with pytest.raises(AssertionError):
        WorldImageModality(tiny_system, torch.zeros(2, 1, 16, 16), data.description_vocab())

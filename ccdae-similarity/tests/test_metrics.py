import numpy as np
import pytest
import scipy.stats

from ccdae_similarity import metrics


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_correlations_equal_scipy_with_ties(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 7, size=40).astype(float)  # many ties, like ground-truth levels
    y = x + rng.normal(0, 2.0, size=40)
    y[:5] = y[5]  # ties in y too
    assert metrics.spearman(x, y) == pytest.approx(scipy.stats.spearmanr(x, y).statistic)
    assert metrics.kendall(x, y) == pytest.approx(scipy.stats.kendalltau(x, y).statistic)
    np.testing.assert_allclose(metrics.rankdata(y), scipy.stats.rankdata(y))


def test_two_afc_and_ranking_accuracy_closed_form():
    assert metrics.two_afc([3, 1, 2], [1, 2, 2]) == pytest.approx((1 + 0 + 0.5) / 3)
    assert metrics.ranking_accuracy([2, 3], [1, 2.5]) == pytest.approx((1 + 0 + 1 + 1) / 4)


def test_perfect_and_reversed_rank_correlation():
    x = np.arange(10.0)
    assert metrics.spearman(x, x**3) == pytest.approx(1.0)
    assert metrics.kendall(x, -x) == pytest.approx(-1.0)

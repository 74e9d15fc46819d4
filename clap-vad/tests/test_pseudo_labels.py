import numpy as np
import pytest
from scipy.stats import norm

from clap_vad import pseudo_labels as pl


def test_video_statistics_matches_reference(rng):
    video = np.abs(rng.standard_normal((12, 3, 8))).astype(np.float32)
    np.testing.assert_allclose(pl.video_statistics(video), pl._reference_video_statistics(video))


def test_magnitude_closed_form():
    video = np.ones((4, 2, 3), dtype=np.float32)
    video[2] *= 2.0  # squared norm 3 -> 12
    np.testing.assert_allclose(pl.snippet_magnitude(video), [3, 3, 12, 3])


@pytest.mark.parametrize("ratio", [0.0, 0.1, 0.2, 0.5, 1.0])
def test_window_matches_reference(rng, ratio):
    for t in (1, 2, 7, 30):
        s = rng.random(t)
        np.testing.assert_array_equal(pl.max_variation_window(s, ratio),
                                      pl._reference_max_variation_window(s, ratio))


def test_window_hand_case():
    # one spike at 5: windows of 2 snippets score |s[i+1]-s[i]|; first maximum is (4, 5)
    s = np.zeros(10)
    s[5] = 1.0
    np.testing.assert_array_equal(pl.max_variation_window(s, 0.2), np.eye(10)[4] + np.eye(10)[5])


def test_mixture_pdf_is_weighted_gaussians():
    x = np.linspace(-3, 5, 11)
    got = pl.mixture_pdf(x, np.array([0.0, 2.0]), np.array([1.0, 4.0]), np.array([1, 3]))
    want = 0.25 * norm.pdf(x, 0, 1) + 0.75 * norm.pdf(x, 2, 2)
    np.testing.assert_allclose(got, want)


def _obvious_set(rng, n_normal=12, n_anom=3, t=30):
    """Smooth normal videos with per-video gain; anomalous ones get a big burst at 12..18."""
    videos, truth = [], []
    for i in range(n_normal + n_anom):
        gain = rng.uniform(0.6, 1.4)
        v = gain * (1.0 + 0.01 * rng.standard_normal((t, 2, 8)))
        gt = np.zeros(t)
        if i >= n_normal:
            v[12:18] += 3.0
            gt[12:18] = 1
        videos.append(np.abs(v).astype(np.float32))
        truth.append(gt)
    return videos, truth


def test_coarse_and_fine_labels_mark_planted_anomaly(rng):
    videos, truth = _obvious_set(rng)
    video_labels = pl.coarse_video_labels(videos)
    np.testing.assert_array_equal(video_labels, [0] * 12 + [1] * 3)
    stats = pl.normal_statistics(videos, video_labels)
    labels = pl.fine_snippet_labels(videos, video_labels, [stats], window_ratio=0.2)
    for y, gt, vl in zip(labels, truth, video_labels):
        if vl == 0:
            assert y.sum() == 0
        else:  # the 6-snippet window of largest density change straddles an event edge
            assert y.sum() == 6 and (y * gt).sum() >= 1


def test_larger_cluster_is_normal(rng):
    videos, _ = _obvious_set(rng, n_normal=3, n_anom=12)  # bursts are now the majority
    assert pl.coarse_video_labels(videos).sum() == 3


def test_single_video_is_normal(rng):
    videos, _ = _obvious_set(rng, n_normal=1, n_anom=0)
    assert pl.coarse_video_labels(videos).tolist() == [0]


def test_refine_union_and_average():
    prev = np.zeros(20)
    prev[0:4] = 1
    scores = np.zeros(20)
    scores[10] = 1.0  # new window of 2 at (9, 10): no overlap -> union, all ones
    out = pl.refine_labels(prev, scores, 0.1)
    assert out[[0, 1, 2, 3, 9, 10]].tolist() == [1] * 6 and out.sum() == 6
    scores = np.zeros(20)
    scores[2] = 1.0  # window (1, 2) overlaps -> average
    out = pl.refine_labels(prev, scores, 0.1)
    np.testing.assert_allclose(out[:4], [0.5, 1.0, 1.0, 0.5])

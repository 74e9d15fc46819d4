"""CLAP unsupervised pseudo-labels (Sec. 3.1, CKDS), following the official code.

Shape legend: V videos of a participant, T snippets of a video, C crops, D feature size.

1. Video level (coarse, local): each video is summarised by two statistics of its snippets,
   (max_t (m_{t+1} - m_t), H) where m_t is the crop-averaged squared L2 norm of snippet t
   ("feature magnitude") and H = -sum_d s_d log s_d over the diagonal s of the temporal covariance
   of the crop-averaged features (entropy term). A 2-component GMM splits the participant's videos;
   the larger cluster is taken as normal (anomalies are rare).
2. Common knowledge (shared): each participant sends only (mu_k, var_k, n_k), the mean/variance
   of m_t over the snippets of its normal videos and their count. The server broadcasts them and
   every participant evaluates the mixture p(m) = sum_k n_k / N * Normal(m; mu_k, var_k).
3. Segment level (fine, local): inside each video judged anomalous, a window of
   int(0.2 T) snippets where p(m_t) changes the most (largest total variation) is labelled 1;
   every other snippet, and every snippet of a normal video, is 0. Official rule: for T < 5 the
   window int(0.2 T) is 0 and the video gets no positive label; `at_least_one=True` (the
   corrected option) keeps one snippet instead.
4. Optional refinement (official `pl_refining`): a window of int(0.1 T) snippets of largest score
   variation under the current model is fused with the previous labels.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.mixture import GaussianMixture


def snippet_magnitude(video: np.ndarray) -> np.ndarray:
    """Crop-averaged squared L2 norm of each snippet (official `get_matrix`).

    Args:
        video: [T, C, D] features.
    Returns:
        [T] float64 magnitudes m_t.
    """
    assert video.ndim == 3, video.shape
    return np.square(video.astype(np.float64)).sum(axis=2).mean(axis=1)


def video_statistics(video: np.ndarray) -> np.ndarray:
    """(max magnitude jump, covariance-diagonal entropy) of one video; [2] float64."""
    m = snippet_magnitude(video)
    x = video.astype(np.float64).mean(axis=1)  # [T, D] crop-averaged
    s = x.var(axis=0, ddof=1)  # [D] = diag(np.cov(x.T)); only the diagonal enters H
    s = np.where(s == 0, 1e-9, s)  # official guard against log(0)
    return np.array([np.diff(m).max(), -(s * np.log(s)).sum()])


def _reference_video_statistics(video: np.ndarray) -> np.ndarray:
    """Slow oracle with the full covariance, as written in the official code."""
    m = snippet_magnitude(video)
    cov = np.cov(video.astype(np.float64).mean(axis=1).T)  # [D, D]
    diag = np.where(np.diagonal(cov) == 0, 1e-9, np.diagonal(cov))
    entropy = sum(-(v * np.log(v)) for v in diag)
    return np.array([max(m[i + 1] - m[i] for i in range(len(m) - 1)), entropy])


def coarse_video_labels(videos: list[np.ndarray], max_iter: int = 150,
                        seed: int = 0) -> np.ndarray:
    """Video-level pseudo-labels [V] (1 = anomalous) from a 2-component GMM on the statistics.

    The larger cluster is normal (official tie rule: equal sizes -> cluster 0 is anomalous).
    Fewer than 2 videos cannot be clustered: they are all labelled normal.
    """
    if len(videos) < 2:
        return np.zeros(len(videos), dtype=np.int64)
    params = np.stack([video_statistics(v) for v in videos])  # [V, 2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn ConvergenceWarning on tiny participants
        gmm = GaussianMixture(n_components=2, max_iter=max_iter, random_state=seed)
        cluster = gmm.fit_predict(params)
    n0, n1 = (cluster == 0).sum(), (cluster == 1).sum()
    anomalous_cluster = 1 if n0 > n1 else 0
    return (cluster == anomalous_cluster).astype(np.int64)


def normal_statistics(videos: list[np.ndarray], video_labels: np.ndarray) -> tuple[float, float, int]:
    """(mu, var, n) of magnitudes over all snippets of the videos judged normal (shared in CKDS)."""
    normal = [snippet_magnitude(v) for v, y in zip(videos, video_labels) if y == 0]
    if not normal:
        normal = [snippet_magnitude(v) for v in videos]  # degenerate: nothing judged normal
    m = np.concatenate(normal)
    var = float(np.var(m, ddof=1)) if m.size > 1 else 1.0
    return float(m.mean()), max(var, 1e-12), int(m.size)


def mixture_pdf(x: np.ndarray, mus: np.ndarray, variances: np.ndarray,
                counts: np.ndarray) -> np.ndarray:
    """p(x) = sum_k n_k / N * Normal(x; mu_k, var_k) (official `sum_multivariate_normals`)."""
    x = np.asarray(x, dtype=np.float64)[..., None]  # [T, 1]
    w = np.asarray(counts, dtype=np.float64) / np.sum(counts)  # [K]
    var = np.asarray(variances, dtype=np.float64)
    dens = np.exp(-0.5 * (x - np.asarray(mus)) ** 2 / var) / np.sqrt(2 * np.pi * var)  # [T, K]
    return dens @ w


def window_size(t: int, ratio: float, at_least_one: bool = False) -> int:
    """int(ratio * T) as in the official code (0 for short videos), or at least 1."""
    w = int(t * ratio)
    return min(t, max(1, w) if at_least_one else w)


def max_variation_window(signal: np.ndarray, ratio: float,
                         at_least_one: bool = False) -> np.ndarray:
    """0/1 mask [T] of the window of w = int(ratio*T) snippets with largest total variation.

    Window score at start i: sum_{j=i}^{i+w-2} |s_{j+1} - s_j|; the first maximum wins. w = 0
    (official rule, T < 1 / ratio) gives an all-zero mask.
    """
    t = len(signal)
    w = window_size(t, ratio, at_least_one)
    if w == 0:
        return np.zeros(t)
    c = np.concatenate([[0.0], np.cumsum(np.abs(np.diff(np.asarray(signal, np.float64))))])
    scores = c[w - 1:t] - c[0:t - w + 1]  # [T - w + 1]
    start = int(np.argmax(scores))
    mask = np.zeros(t)
    mask[start:start + w] = 1.0
    return mask


def _reference_max_variation_window(signal: np.ndarray, ratio: float,
                                    at_least_one: bool = False) -> np.ndarray:
    """Loop version of the official window search (a window of 0 marks nothing)."""
    t = len(signal)
    w = int(t * ratio)
    w = min(t, max(1, w)) if at_least_one else w
    temp = []
    for idx in range(t - w + 1):
        temp.append(sum(abs(signal[i + 1] - signal[i]) for i in range(idx, idx + w - 1)))
    start = temp.index(max(temp))
    mask = np.zeros(t)
    mask[start:start + w] = 1.0
    return mask


def fine_snippet_labels(videos: list[np.ndarray], video_labels: np.ndarray,
                        shared_stats: list[tuple[float, float, int]],
                        window_ratio: float = 0.2, at_least_one: bool = False) -> list[np.ndarray]:
    """Snippet pseudo-labels per video ([T_v] each) from the shared normal-magnitude mixture."""
    mus, variances, counts = (np.asarray(c) for c in zip(*shared_stats))
    out = []
    for v, y in zip(videos, video_labels):
        if y == 0:
            out.append(np.zeros(v.shape[0]))
            continue
        p = mixture_pdf(snippet_magnitude(v), mus, variances, counts)
        out.append(max_variation_window(p, window_ratio, at_least_one))
    return out


def refine_labels(previous: np.ndarray, scores: np.ndarray, window_ratio: float = 0.1,
                  at_least_one: bool = False) -> np.ndarray:
    """Fuse labels [T] of an anomalous video with the model's score window (official pl_refining).

    IoU < 0.05 between the old positives and the new window: take their union; else average.
    """
    new = max_variation_window(scores, window_ratio, at_least_one)
    res = (previous > 0.5).astype(np.float64) + new
    nonzero = np.count_nonzero(res)
    iou = (res == 2).sum() / nonzero if nonzero else 0.0
    fused = previous + new
    if iou < 0.05:
        fused[fused > 0] = 1.0
    else:
        fused = fused / 2
    return fused

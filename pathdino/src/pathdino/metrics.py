"""Evaluation protocols (Sec. 4): patch search (leave-one-out kNN, top-1 and majority vote MV@k),
linear probe, retrieval precision, rotation consistency, WSI-level majority vote.

Shapes: N embeddings, D dim; labels [N] int64. Similarities are cosine (L2-normalised features).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score


def neighbours(queries: np.ndarray, database: np.ndarray, k: int,
               exclude_self: bool) -> np.ndarray:
    """Indices [Nq, k] of the k most cosine-similar database rows per query.

    exclude_self: query i is database row i and must not retrieve itself (leave-one-out).
    """
    q = F.normalize(torch.as_tensor(queries, dtype=torch.float32), dim=-1)
    d = F.normalize(torch.as_tensor(database, dtype=torch.float32), dim=-1)
    sim = q @ d.t()  # [Nq, Nd]
    if exclude_self:
        assert sim.shape[0] == sim.shape[1], sim.shape
        sim.fill_diagonal_(-float("inf"))
    k = min(k, sim.shape[1] - int(exclude_self))
    return sim.topk(k, dim=1).indices.numpy()


def majority_vote(votes: np.ndarray) -> np.ndarray:
    """Row-wise most frequent label [N]; ties go to the label of the nearer neighbour."""
    out = np.empty(len(votes), np.int64)
    for i, row in enumerate(votes):
        values, counts = np.unique(row, return_counts=True)
        best = values[counts == counts.max()]
        out[i] = next(v for v in row if v in best)  # row is ordered by similarity
    return out


def _acc_f1(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    return {"acc": float(accuracy_score(y_true, y_pred)),
            "f1": float(f1_score(y_true, y_pred, average="macro"))}


def knn_search(queries: np.ndarray, database: np.ndarray, db_labels: np.ndarray,
               query_labels: np.ndarray, ks: tuple[int, ...] = (1, 3, 5),
               exclude_self: bool = True) -> dict[str, float]:
    """Patch search: top-1 and majority vote at k (MV@k) accuracy and macro-F1, precision@k."""
    idx = neighbours(queries, database, max(ks), exclude_self)
    retrieved = db_labels[idx]  # [Nq, k]
    out = {}
    for k in ks:
        pred = retrieved[:, 0] if k == 1 else majority_vote(retrieved[:, :k])
        name = "top1" if k == 1 else f"mv{k}"
        for key, value in _acc_f1(query_labels, pred).items():
            out[f"{name}_{key}"] = value
    out[f"precision_at_{max(ks)}"] = float((retrieved == query_labels[:, None]).mean())
    return out


def linear_probe(train_x: np.ndarray, train_y: np.ndarray, test_sets: dict[str, tuple],
                 seed: int = 0) -> dict[str, float]:
    """Logistic regression on frozen (standardised) embeddings; acc / macro-F1 per test set."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    clf = LogisticRegression(max_iter=2000, C=1.0, random_state=seed)
    clf.fit((train_x - mean) / std, train_y)
    out = {}
    for name, (x, y) in test_sets.items():
        for key, value in _acc_f1(y, clf.predict((x - mean) / std)).items():
            out[f"{name}_{key}"] = value
    return out


def stratified_halves(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a 50/50 split with every class on both sides."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        cut = max(1, len(idx) // 2)
        train.extend(idx[:cut])
        test.extend(idx[cut:])
    return np.sort(train), np.sort(test)


def rotation_consistency(base: torch.Tensor, rotated: torch.Tensor,
                         center: torch.Tensor | None = None) -> torch.Tensor:
    """Cosine similarity of each patch's embedding with its rotated copies.

    Args:
        base: [N, D] embeddings of the unrotated patches.
        rotated: [A, N, D] embeddings of the same patches at A angles.
        center: optional [D] vector subtracted first (e.g. the data set's mean embedding): a
            raw cosine is near 1 for any features that share a large common component, the
            centred one measures agreement in the directions that separate patches.
    Returns:
        [A] mean cosine similarity per angle (1 = perfectly rotation-invariant).
    """
    assert rotated.shape[1:] == base.shape, (rotated.shape, base.shape)
    if center is not None:
        base, rotated = base - center, rotated - center
    return F.cosine_similarity(rotated, base[None], dim=-1).mean(1)


def wsi_majority_vote(bags: list[np.ndarray], labels: np.ndarray) -> dict[str, float]:
    """WSI search, leave-one-slide-out: each patch of slide s retrieves its nearest patch among all
    other slides' patches; the slide's prediction is the majority vote of these labels.

    Args:
        bags: per slide [n_s, D] patch embeddings; labels: [S] slide labels.
    """
    feats = np.concatenate(bags)
    owner = np.concatenate([np.full(len(b), i) for i, b in enumerate(bags)])
    x = F.normalize(torch.as_tensor(feats, dtype=torch.float32), dim=-1)
    sim = x @ x.t()  # [P, P]
    sim[torch.as_tensor(owner[:, None] == owner[None, :])] = -float("inf")  # other slides only
    nearest = sim.argmax(1).numpy()
    patch_votes = labels[owner[nearest]]
    preds = np.array([majority_vote(patch_votes[owner == i][None])[0]
                      for i in range(len(bags))])
    return {f"wsi_mv_{k}": v for k, v in _acc_f1(labels, preds).items()}

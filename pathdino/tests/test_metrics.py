import numpy as np
import torch

from pathdino import metrics as M


def test_knn_on_separated_clusters(rng):
    centres = np.eye(3) * 10
    labels = np.repeat(np.arange(3), 6)
    x = centres[labels] + rng.normal(0, 0.1, (18, 3))
    out = M.knn_search(x, x, labels, labels)
    assert out["top1_acc"] == 1.0 and out["mv5_f1"] == 1.0 and out["precision_at_5"] == 1.0


def test_leave_one_out_excludes_self():
    x = np.array([[1.0, 0.0], [0.0, 1.0]])
    idx = M.neighbours(x, x, 1, exclude_self=True)
    assert idx.tolist() == [[1], [0]]


def test_majority_vote_ties_go_to_nearest():
    assert M.majority_vote(np.array([[2, 1, 1, 2, 0], [3, 3, 1, 1, 1]])).tolist() == [2, 1]


def test_rotation_consistency_closed_form():
    base = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    rotated = torch.stack([base, -base, base.flip(1)])  # same, opposite, orthogonal
    torch.testing.assert_close(M.rotation_consistency(base, rotated), torch.tensor([1.0, -1, 0]))


def test_linear_probe_and_wsi_vote(rng):
    labels = np.repeat([0, 1], 10)
    x = np.stack([labels * 4.0, 1 - labels * 4.0], 1) + rng.normal(0, 0.1, (20, 2))
    out = M.linear_probe(x, labels, {"test": (x, labels)})
    assert out["test_acc"] == 1.0
    bags = [x[:5], x[5:10], x[10:15], x[15:]]
    res = M.wsi_majority_vote(bags, np.array([0, 0, 1, 1]))
    assert res["wsi_mv_acc"] == 1.0
    train, test = M.stratified_halves(labels, 0)
    assert len(set(train) & set(test)) == 0 and set(labels[test]) == {0, 1}

import numpy as np
import pytest
import torch

from pairdetr.matching import (
    PairHungarianMatcher,
    _reference_brute_force_assignment,
    pair_cost_matrix,
)


def _random_pairs(g, n):
    centre = torch.rand(n, 2, generator=g) * 0.6 + 0.2
    size = torch.rand(n, 2, generator=g) * 0.2 + 0.05
    face_centre = centre - torch.tensor([0.0, 0.05])
    return torch.cat([centre, size, face_centre, size / 4], 1)  # [n, 8]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matcher_equals_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    queries, targets = 5, 3
    outputs = {"pred_logits": torch.randn(1, queries, 3, generator=g),
               "pred_boxes": _random_pairs(g, queries)[None]}
    tgt = {"labels": torch.randint(0, 2, (targets,), generator=g),
           "boxes": _random_pairs(g, targets)}
    rows, cols = PairHungarianMatcher()(outputs, [tgt])[0]
    cost = pair_cost_matrix(outputs["pred_logits"][0], outputs["pred_boxes"][0], tgt["labels"],
                            tgt["boxes"]).numpy()
    ref_rows, ref_cols, ref_total = _reference_brute_force_assignment(cost)
    assert np.isclose(cost[rows.numpy(), cols.numpy()].sum(), ref_total, atol=1e-5)
    assert rows.tolist() == ref_rows.tolist() and cols.tolist() == ref_cols.tolist()


def test_matcher_invariant_to_target_permutation():
    g = torch.Generator().manual_seed(3)
    outputs = {"pred_logits": torch.randn(2, 6, 3, generator=g),
               "pred_boxes": torch.stack([_random_pairs(g, 6), _random_pairs(g, 6)])}
    targets = [{"labels": torch.tensor([0, 1, 0, 0]), "boxes": _random_pairs(g, 4)},
               {"labels": torch.tensor([1]), "boxes": _random_pairs(g, 1)}]
    matcher = PairHungarianMatcher()
    base = matcher(outputs, targets)
    perm = torch.tensor([2, 0, 3, 1])
    permuted = [{"labels": targets[0]["labels"][perm], "boxes": targets[0]["boxes"][perm]},
                targets[1]]
    new = matcher(outputs, permuted)
    pairs_base = {(int(q), int(t)) for q, t in zip(*base[0])}
    pairs_new = {(int(q), int(perm[t])) for q, t in zip(*new[0])}
    assert pairs_base == pairs_new
    assert base[1][0].tolist() == new[1][0].tolist()


def test_matcher_zero_targets():
    outputs = {"pred_logits": torch.randn(2, 4, 3), "pred_boxes": torch.rand(2, 4, 8)}
    empty = {"labels": torch.zeros(0, dtype=torch.int64), "boxes": torch.zeros(0, 8)}
    for targets in ([empty, empty], [empty, {"labels": torch.tensor([0]),
                                             "boxes": torch.rand(1, 8)}]):
        result = PairHungarianMatcher()(outputs, targets)
        assert len(result[0][0]) == 0
        assert len(result[1][0]) == len(targets[1]["labels"])


def test_cost_uses_both_boxes_of_the_pair():
    """Two queries with the same body but different faces: the one with the right face wins."""
    body = torch.tensor([0.5, 0.5, 0.2, 0.6])
    face_ok, face_bad = torch.tensor([0.5, 0.3, 0.05, 0.06]), torch.tensor([0.7, 0.3, 0.05, 0.06])
    boxes = torch.stack([torch.cat([body, face_bad]), torch.cat([body, face_ok])])[None]
    target = {"labels": torch.tensor([0]), "boxes": torch.cat([body, face_ok])[None]}
    rows, _ = PairHungarianMatcher()({"pred_logits": torch.zeros(1, 2, 3), "pred_boxes": boxes},
                                     [target])[0]
    assert rows.tolist() == [1]
    # the class cost enters once per box: with identical boxes, C = 2 * w_cls * c_cls + const
    logits = torch.tensor([[2.0, 0.0, 0.0]])
    single = pair_cost_matrix(logits, torch.rand(1, 4), torch.tensor([0]), torch.rand(1, 4),
                              cost_bbox=0, cost_giou=0)
    box = torch.rand(1, 8)
    double = pair_cost_matrix(logits, box, torch.tensor([0]), box, cost_bbox=0, cost_giou=0)
    torch.testing.assert_close(double, 2 * single)

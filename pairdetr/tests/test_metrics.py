import math

import numpy as np

from pairdetr.data import PairRecord
from pairdetr.metrics import (
    ap_and_mr,
    caltech_match,
    evaluate_detection,
    evaluate_mmr,
    log_average_miss_rate_coco,
)


def _record(bodies, faces, has_face, ignore=None, vis=None):
    n = len(bodies)
    return PairRecord("img", 640, 480, np.array(bodies, float), np.array(faces, float),
                      np.zeros((n, 4)), np.array(has_face, bool),
                      np.ones(n) if vis is None else np.array(vis, float),
                      np.zeros(n, bool) if ignore is None else np.array(ignore, bool))


def test_ap_and_mr_hand_values():
    """2 people + 1 ignore region; detections: TP 0.9, FP 0.8, inside-ignore 0.7, TP 0.6."""
    gt = np.array([[0, 0, 50, 100], [100, 0, 150, 100], [300, 0, 400, 100]])
    ignore = np.array([False, False, True])
    dt = np.array([[0, 0, 50, 100, 0.9], [200, 200, 250, 300, 0.8],
                   [310, 10, 340, 60, 0.7], [101, 0, 150, 100, 0.6]])
    matches = caltech_match(dt, gt, ignore)
    assert matches == [(0.9, 1), (0.8, 0), (0.6, 1)]
    ap, mr = ap_and_mr(matches, num_gt=2, num_images=1)
    # recall .5 .5 1, precision 1 .5 2/3: AP = 0.5 * (0.5 + 2/3) / 2
    assert math.isclose(ap, 0.5 * (0.5 + 2 / 3) / 2)
    # FPPI 0 1 1: the first point with FPPI >= every reference is the 2nd -> miss rate 0.5
    assert math.isclose(mr, 0.5)
    rec = _record(gt, np.zeros((3, 4)), [False] * 3, ignore=ignore)
    scores = evaluate_detection([{"body": dt}], [rec], "body")
    assert math.isclose(scores["body_AP"], ap) and math.isclose(scores["body_MR"], mr)


def test_perfect_detections_give_zero_miss_rate():
    gt = np.array([[0, 0, 50, 100], [100, 0, 150, 100]])
    dt = np.concatenate([gt, [[0.9], [0.8]]], 1)
    ap, mr = ap_and_mr(caltech_match(dt, gt, np.zeros(2, bool)), 2, 1)
    assert math.isclose(ap, 0.5) and mr == 0.0  # toolkit AP has no (0, 1) point


def test_mmr_hand_value_counts_wrong_associations_as_misses():
    """3 people; pairs: right (0.9), body of #2 + face of #1 (0.8, wrong), right #2 (0.7)."""
    bodies = [[0, 0, 50, 100], [100, 0, 150, 100], [200, 0, 250, 100]]
    faces = [[15, 5, 35, 30], [115, 5, 135, 30], [215, 5, 235, 30]]
    rec = _record(bodies, faces, [True] * 3)

    def pair(b, f, s):
        return list(bodies[b]) + [s] + list(faces[f]) + [s]

    pairs = np.array([pair(0, 0, 0.9), pair(1, 0, 0.8), pair(1, 1, 0.7)])
    result = evaluate_mmr([{"pairs": pairs}], [rec], setups={
        "Reasonable": ((50, 1e10), (0.65, 1e10), (20, 1e10))})
    # ranked TP, FP, TP -> FPPI 0, 1, 1 and recall 1/3, 1/3, 2/3: recall at FPPI <= ref is 1/3
    # for the 8 references below 1 and 2/3 at 1
    expected = math.exp((8 * math.log(2 / 3) + math.log(1 / 3)) / 9)
    assert math.isclose(result["mMR_Reasonable"], expected)
    # a face-less detection (f_score 0) is not a pair and is ignored
    with_placeholder = np.concatenate([pairs, [[0, 0, 50, 100, 0.95, 0, 0, 1, 1, 0.0]]])
    again = evaluate_mmr([{"pairs": with_placeholder}], [rec], setups={
        "Reasonable": ((50, 1e10), (0.65, 1e10), (20, 1e10))})
    assert math.isclose(again["mMR_Reasonable"], expected)


def test_mmr_subsets_turn_out_of_range_people_into_ignore():
    bodies = [[0, 0, 50, 100], [100, 0, 150, 100]]
    faces = [[15, 5, 35, 30], [115, 5, 135, 30]]
    rec = _record(bodies, faces, [True, True], vis=[1.0, 0.3])
    pairs = np.array([bodies[0] + [0.9] + faces[0] + [0.9], bodies[1] + [0.8] + faces[1] + [0.8]])
    res = evaluate_mmr([{"pairs": pairs}], [rec])
    assert res["mMR_Bare"] == 0.0  # only person 0 counts; person 1's pair hits an ignore region
    assert res["mMR_Heavy"] == 0.0  # only person 1 counts
    assert math.isnan(res["mMR_Partial"])  # nobody with 0.65 <= vis <= 0.9


def test_miss_rate_when_first_detection_is_false_positive():
    scores = np.array([0.9, 0.8])
    tp = np.array([False, True])
    value = log_average_miss_rate_coco(scores, tp, np.zeros(2, bool), num_gt=1, num_images=10)
    # FPPI 0.1, 0.1: references below 0.1 see no detection (recall 0) -> miss 1 (log 0);
    # references >= 0.1 see recall 1 -> miss 0 -> the log-average is 0
    assert value == 0.0
    value2 = log_average_miss_rate_coco(scores, np.array([False, False]), np.zeros(2, bool), 1, 10)
    assert value2 == 1.0

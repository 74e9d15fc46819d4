import math

import numpy as np
import torch

from pairdetr.data import PairRecord
from pairdetr.metrics import (
    MMR_SETUPS,
    _mmr_image,
    ap_and_mr,
    caltech_match,
    evaluate_detection,
    evaluate_mmr,
    image_summary,
    log_average_miss_rate_coco,
    pool_summaries,
)
from pairdetr.postprocess import postprocess_pairs


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


# ------------------------------------------------------------------ official protocol quirks
# Each hand-built case pins one behaviour of the released toolkits (BFJDet APMRToolkits and
# PairDETR's eval_mmr.py) that eval_protocol = "official" reproduces and "corrected" fixes.


def test_official_face_ap_uses_the_ignored_persons_body_as_ignore_region():
    """APMRToolkits load_gt_boxes(if_face): an ignored person's ignore region is its BODY box."""
    bodies = [[0, 0, 50, 100], [100, 0, 150, 100], [200, 0, 250, 100]]
    faces = [[15, 5, 35, 30], [115, 5, 135, 30], [215, 5, 235, 30]]
    rec = _record(bodies, faces, [True] * 3, ignore=[False, True, False])
    dt = np.array([[15, 5, 35, 30, 0.9],  # face of person 0
                   [105, 50, 145, 95, 0.8],  # inside person 1's body, far from its face
                   [215, 5, 235, 30, 0.7]])  # face of person 2
    corrected = evaluate_detection([{"face": dt}], [rec], "face", protocol="corrected")
    official = evaluate_detection([{"face": dt}], [rec], "face", protocol="official")
    # corrected: TP, FP, TP -> recall .5 .5 1, precision 1 .5 2/3
    assert math.isclose(corrected["face_AP"], 0.5 * (0.5 + 2 / 3) / 2)
    # official: the second detection falls in the ignored body -> TP, TP
    assert math.isclose(official["face_AP"], 0.5 * (1 + 1) / 2)


def test_official_wraps_to_the_final_recall_below_the_first_fppi():
    """COCOMReval.accumulate: searchsorted(...) - 1 = -1 reads recall[-1] (the final recall)."""
    scores, tp = np.array([0.9, 0.8]), np.array([False, True])
    args = (scores, tp, np.zeros(2, bool), 2, 10)  # 2 people, 10 images: FPPI 0.1, 0.1
    # corrected: 4 references below 0.1 see recall 0 (miss 1), 5 see recall .5
    assert math.isclose(log_average_miss_rate_coco(*args), 0.5 ** (5 / 9))
    # official: the 4 low references read recall[-1] = .5 too
    assert math.isclose(log_average_miss_rate_coco(*args, protocol="official"), 0.5)


def test_official_compute_iou_rows_follow_body_score_order():
    """computeIoU re-sorts detections by body score while matching walks body + face order."""
    bodies = [[0, 0, 50, 100], [100, 0, 150, 100], [200, 0, 250, 100]]
    faces = [[15, 5, 35, 30], [115, 5, 135, 30], [215, 5, 235, 30]]
    rec = _record(bodies, faces, [True] * 3)
    a = bodies[0] + [0.5] + faces[0] + [0.9]  # exact person 0, sum 1.4, body score 0.5
    b = [400, 0, 450, 100, 0.6, 415, 5, 435, 30, 0.6]  # nobody, sum 1.2, body score 0.6
    c = bodies[1] + [0.1] + faces[1] + [0.1]  # exact person 1, sum 0.2
    setup = MMR_SETUPS["Reasonable"]
    _, tp_corrected, _, _ = _mmr_image(np.array([a, b, c]), rec, setup, 1.0)
    _, tp_official, _, _ = _mmr_image(np.array([a, b, c]), rec, setup, 1.0, protocol="official")
    assert tp_corrected.tolist() == [True, False, True]
    assert tp_official.tolist() == [False, True, True]  # a is matched with b's overlaps
    one = {"Reasonable": setup}
    res_c = evaluate_mmr([{"pairs": np.array([a, b, c])}], [rec], setups=one)
    res_o = evaluate_mmr([{"pairs": np.array([a, b, c])}], [rec], setups=one, protocol="official")
    # corrected: recall 1/3 at FPPI 0, 2/3 at FPPI 1
    assert math.isclose(res_c["mMR_Reasonable"], math.exp((8 * math.log(2 / 3) + math.log(1 / 3))
                                                          / 9))
    # official: FP first (FPPI 1): every reference reads the final recall 2/3 (wrap-around)
    assert math.isclose(res_o["mMR_Reasonable"], 1 / 3)
    # PairDETR's own pairs carry one score for both boxes: no misalignment
    equal = np.array([bodies[0] + [0.7] + faces[0] + [0.7], b[:4] + [0.9] + b[5:9] + [0.9]])
    assert (_mmr_image(equal, rec, setup, 1.0)[1] ==
            _mmr_image(equal, rec, setup, 1.0, protocol="official")[1]).all()


def test_official_eval_mmr_runs_four_of_five_setups_under_shifted_keys():
    """PairDETR's eval_mmr(): range(4) over [All, Reasonable, Bare, Partial, Heavy] stored as
    Reasonable, Bare, Partial, Heavy."""
    bodies = [[0, 0, 50, 100], [100, 0, 150, 100], [200, 0, 250, 100]]
    faces = [[15, 5, 35, 30], [115, 5, 135, 30], [215, 5, 235, 30]]
    rec = _record(bodies, faces, [True] * 3, vis=[1.0, 0.75, 0.3])
    pairs = np.array([bodies[0] + [0.9] + faces[0] + [0.9]])  # only person 0 found
    corrected = evaluate_mmr([{"pairs": pairs}], [rec])
    official = evaluate_mmr([{"pairs": pairs}], [rec], protocol="official")
    assert corrected["mMR_Reasonable"] == 0.5 and corrected["mMR_Bare"] == 0.0
    assert corrected["mMR_Partial"] == 1.0 and corrected["mMR_Heavy"] == 1.0
    assert math.isclose(corrected["mMR_All"], 2 / 3)
    assert set(official) == {"mMR_Reasonable", "mMR_Bare", "mMR_Partial", "mMR_Heavy",
                             "mMR_mean"}
    assert math.isclose(official["mMR_Reasonable"], 2 / 3)  # the All setup
    assert official["mMR_Bare"] == 0.5 and official["mMR_Partial"] == 0.0  # Reasonable, Bare
    assert official["mMR_Heavy"] == 1.0  # Partial
    assert math.isclose(official["mMR_mean"], (2 / 3 + 0.5 + 0.0 + 1.0) / 4)


def test_official_ap_clips_boxes_and_counts_images_with_a_person():
    """APMRToolkits clip_all_boader and its COCO reader's image list (del_image_id)."""
    rec = _record([[600, 0, 700, 100]], np.zeros((1, 4)), [False])  # 640 x 480: sticks out
    dt = np.array([[600, 0, 640, 100, 0.9]])  # the visible part: IoU 0.4 unless gt is clipped
    only_ignored = _record([[0, 0, 50, 100]], np.zeros((1, 4)), [False], ignore=[True])
    none = (np.zeros((0, 5)), np.zeros((0, 10)))
    preds = [{"body": dt, "face": none[0], "pairs": none[1]},
             {"body": np.array([[300, 300, 350, 400, 0.8]]), "face": none[0], "pairs": none[1]}]
    records = [rec, only_ignored]
    assert image_summary(preds[0], rec, "official")["body"] == [(0.9, 1)]
    assert image_summary(preds[0], rec, "corrected")["body"] == [(0.9, 0)]
    official = pool_summaries([image_summary(p, r, "official") for p, r in zip(preds, records)],
                              "official")
    corrected = pool_summaries([image_summary(p, r, "corrected") for p, r in zip(preds, records)])
    # official: one TP on one counted image (the second image holds only an ignored person)
    assert official["body_MR"] == 0.0
    # corrected: two FPs over two images
    assert corrected["body_MR"] == 1.0


def test_official_postprocessing_keeps_every_query():
    """test.py keeps queries whose max softmax over ALL classes > 0.1: with 3 classes, all."""
    logits = torch.tensor([[5.0, 0.0, 0.0], [-5.0, -5.0, 5.0], [-6.0, -6.0, 6.0]])
    boxes = torch.tensor([[0.5, 0.5, 0.2, 0.8, 0.5, 0.2, 0.1, 0.1]] * 3)
    official = postprocess_pairs(logits, boxes, 100, 100, protocol="official")
    corrected = postprocess_pairs(logits, boxes, 100, 100, conf_threshold=0.01)
    assert len(official["body"]) == 3 and len(corrected["body"]) == 1


def test_subset_ranges_read_the_annotated_heights(tmp_path):
    """COCOMReval compares gt['height'] and f_bbox[3] as written in the file; y2 - y1 of the
    converted boxes can fall a bit short of 20 / 50 px (33.1 + 50 - 33.1 = 49.99999...)."""
    import json

    from pairdetr.data import load_bfjdet_json

    ann = {"image_id": 1, "category_id": 1, "bbox": [0.1, 33.1, 30, 50], "height": 50,
           "f_bbox": [5, 36.1, 16, 20.0], "vis_ratio": 1.0, "ignore": 0}
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.png", "width": 640,
                                            "height": 480}], "annotations": [ann]}))
    rec = load_bfjdet_json(path, tmp_path)[0][0]
    assert rec.bodies[0, 3] - rec.bodies[0, 1] < 50  # the converted box
    pairs = np.array([list(rec.bodies[0]) + [0.9] + list(rec.faces[0]) + [0.9]])
    result = evaluate_mmr([{"pairs": pairs}], [rec], protocol="official")
    assert result["mMR_Bare"] == 0.0  # the Reasonable setup counts the person: found

import numpy as np
import torch

from pairdetr.postprocess import match_body_face_pos, postprocess_pairs, postprocess_two_stage


def test_pairs_become_linked_body_and_face_detections():
    logits = torch.tensor([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0], [-5.0, -5.0, 5.0]])
    boxes = torch.tensor([[0.5, 0.5, 0.2, 0.8, 0.5, 0.2, 0.1, 0.1]] * 3)
    out = postprocess_pairs(logits, boxes, width=100, height=200, conf_threshold=0.1)
    assert out["body"].shape == (2, 5)  # the pair query and the body-only query
    assert out["face"].shape == (1, 5) and out["pairs"].shape == (1, 10)
    np.testing.assert_allclose(out["pairs"][0, :4], [40, 20, 60, 180], rtol=1e-6)
    np.testing.assert_allclose(out["pairs"][0, 5:9], [45, 30, 55, 50], rtol=1e-6)
    p = torch.softmax(logits[0], 0)[0].item()
    assert np.isclose(out["pairs"][0, 4], p) and np.isclose(out["pairs"][0, 9], p)


def test_pos_heuristic_links_face_inside_body():
    body = np.array([[0, 0, 50, 100, 0.9], [100, 0, 150, 100, 0.8]])
    face = np.array([[110, 5, 130, 25, 0.7], [10, 5, 30, 25, 0.6], [300, 0, 310, 10, 0.9]])
    pairs = match_body_face_pos(body, face)
    assert pairs.shape == (2, 10)
    got = {(tuple(p[:4]), tuple(p[5:9])) for p in pairs}
    assert ((0, 0, 50, 100), (10, 5, 30, 25)) in got
    assert ((100, 0, 150, 100), (110, 5, 130, 25)) in got
    logits = torch.tensor([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0]])
    boxes = torch.tensor([[0.5, 0.5, 0.4, 0.9], [0.5, 0.15, 0.1, 0.1]])
    out = postprocess_two_stage(logits, boxes, 100, 100)
    assert out["pairs"].shape == (1, 10)

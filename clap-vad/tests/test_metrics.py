import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from clap_vad.metrics import _reference_auc, expand_to_frames, frame_ap_sklearn, frame_auc


def test_expand_to_frames():
    out = expand_to_frames(np.array([0.1, 0.9]), 3)
    np.testing.assert_allclose(out, [0.1, 0.1, 0.1, 0.9, 0.9, 0.9])


def test_frame_auc_hand_case():
    # two snippets of 16 frames: scores 0.2 (normal frames) and 0.8; gt marks 8 frames of each.
    frames = expand_to_frames(np.array([0.2, 0.8]))
    gt = np.r_[np.zeros(16), np.zeros(8), np.ones(8)]
    # positives all score 0.8; negatives: 16 at 0.2 and 8 tied at 0.8 -> AUC = (16 + 0.5*8)/24
    assert frame_auc(frames, gt) == pytest.approx(20 / 24)
    assert frame_auc(frames, gt) == pytest.approx(roc_auc_score(gt, frames))
    assert frame_auc(frames, gt) == pytest.approx(_reference_auc(frames, gt))


def test_auc_ap_match_sklearn_random(rng):
    scores, gt = rng.random(300), (rng.random(300) < 0.2).astype(float)
    assert frame_auc(scores, gt) == pytest.approx(roc_auc_score(gt, scores))
    assert frame_auc(scores, gt) == pytest.approx(_reference_auc(scores, gt))
    assert frame_ap_sklearn(scores, gt) == pytest.approx(average_precision_score(gt, scores))


def test_single_class_is_nan():
    assert np.isnan(frame_auc(np.ones(4), np.zeros(4)))
    assert np.isnan(frame_ap_sklearn(np.ones(4), np.zeros(4)))

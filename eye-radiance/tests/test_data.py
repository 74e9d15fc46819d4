import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from eye_radiance.data import DatasetError, load_ground_truth, load_sequence
from eye_radiance.geometry import axis_angle_error_deg


def test_synthetic_sequence_round_trip(small_sequence):
    data = load_sequence(small_sequence)
    assert data.c_init.shape == (3, 2, 3) and data.skipped == [] and data.frame_ids == [0, 1, 2]
    assert len(data) > 100 and data.rgb.min() >= 0 and data.rgb.max() <= 1
    torch.testing.assert_close(data.dirs.norm(dim=-1), torch.ones(len(data)))


def test_ellipse_initialisation_and_known_perturbation(small_sequence, tmp_path):
    """poses_init.json = the loader's own ellipse-fit poses + the generator's known 2-degree
    axis perturbation; without the file the loader falls back to the ellipse fit."""
    seq = tmp_path / "seq"
    shutil.copytree(small_sequence, seq)
    perturbed = load_sequence(seq)
    (seq / "poses_init.json").unlink()
    fitted = load_sequence(seq)
    torch.testing.assert_close(
        axis_angle_error_deg(perturbed.g_init, fitted.g_init),
        torch.full((3, 2), 2.0),
        atol=1e-3,
        rtol=0,
    )
    gt = load_ground_truth(seq)
    c_true = torch.tensor([[e["c"] for e in f] for f in gt["poses"]])
    assert (fitted.c_init - c_true).norm(dim=-1).max() < 25.0  # mm at 400 mm, ~6 px limbus


def _copy(small_sequence, tmp_path):
    seq = tmp_path / "seq"
    shutil.copytree(small_sequence, seq)
    return seq


def test_frame_without_eye_is_skipped_and_counted_or_stops(small_sequence, tmp_path):
    seq = _copy(small_sequence, tmp_path)
    Image.fromarray(np.zeros((96, 96), np.uint8)).save(seq / "masks" / "0001_0.png")
    data = load_sequence(seq, on_bad_frame="skip")
    assert data.frame_ids == [0, 2] and len(data.skipped) == 1 and "no eye" in data.skipped[0]
    with pytest.raises(DatasetError, match="frame 1.*no eye detected"):
        load_sequence(seq, on_bad_frame="error")


def test_mask_of_wrong_size(small_sequence, tmp_path):
    seq = _copy(small_sequence, tmp_path)
    Image.fromarray(np.zeros((50, 40), np.uint8)).save(seq / "masks" / "0002_1.png")
    with pytest.raises(DatasetError, match=r"mask \(50, 40\) != image \(96, 96\)"):
        load_sequence(seq, on_bad_frame="error")
    assert load_sequence(seq).frame_ids == [0, 1]


def test_missing_files_are_named(small_sequence, tmp_path):
    with pytest.raises(DatasetError, match="cameras.json"):
        load_sequence(tmp_path)
    seq = _copy(small_sequence, tmp_path)
    (seq / "images" / "0001.png").unlink()
    with pytest.raises(DatasetError, match="0001.png"):
        load_sequence(seq)
    cams = json.loads((seq / "cameras.json").read_text())
    (seq / "poses_init.json").write_text(json.dumps({"poses": [[]]}))
    with pytest.raises(DatasetError, match="poses_init.json has 1 frames, cameras.json 3"):
        load_sequence(seq)
    del cams["K"]
    (seq / "cameras.json").write_text(json.dumps(cams))
    with pytest.raises(DatasetError, match="missing key 'K'"):
        load_sequence(seq)

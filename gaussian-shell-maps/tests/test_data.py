import json

import numpy as np
import pytest
import torch
from PIL import Image

from gaussian_shell_maps.cameras import split_label
from gaussian_shell_maps.data import HumanImageFolder, SyntheticMannequins, random_labels


def test_synthetic_dataset_items(template):
    ds = SyntheticMannequins(template, 4, 16, num_points=500)
    img, label = ds[0]
    assert img.shape == (3, 16, 16) and label.shape == (107,)
    assert img.min() >= -1 - 1e-5 and img.max() <= 1 + 1e-5
    assert (img < 0.9).any()  # the mannequin is visible on the white background


def test_label_round_trip(rng):
    labels = random_labels(3, rng)
    cam = split_label(labels, 32)
    assert cam["viewmats"].shape == (3, 4, 4) and cam["body_pose"].shape == (3, 69)
    torch.testing.assert_close(cam["Ks"][:, 2], torch.tensor([0.0, 0, 1]).expand(3, 3))


def _write_folder(root, labels, names, extra=()):
    for name in list(names) + list(extra):
        Image.fromarray(np.full((24, 12, 3), 200, np.uint8)).save(root / name)
    (root / "dataset.json").write_text(json.dumps({"labels": labels}))


def test_image_folder_loads_tall_images(tmp_path, rng):
    row = random_labels(1, rng)[0].tolist()
    _write_folder(tmp_path, [["a.png", row]], ["a.png"])
    img, label = HumanImageFolder(tmp_path, 16)[0]
    assert img.shape == (3, 16, 16) and label.shape == (107,)
    assert img[:, :, 0].max() == 1.0  # padded with white


def test_image_folder_bad_inputs(tmp_path, rng):
    with pytest.raises(FileNotFoundError, match="dataset.json"):
        HumanImageFolder(tmp_path, 16)
    row = random_labels(1, rng)[0].tolist()
    _write_folder(tmp_path, [["a.png", row[:30]]], ["a.png"])
    with pytest.raises(ValueError, match="expected 107"):
        HumanImageFolder(tmp_path, 16)
    _write_folder(tmp_path, [["a.png", row]], ["a.png"], extra=["b.png"])
    with pytest.warns(UserWarning, match="have no label and are not used"):
        assert len(HumanImageFolder(tmp_path, 16)) == 1  # as the official reader: ignored
    (tmp_path / "b.png").unlink()
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": [["c.png", row]]}))
    with pytest.raises(FileNotFoundError, match="missing"):
        HumanImageFolder(tmp_path, 16)

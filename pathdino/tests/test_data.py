import numpy as np
import pytest
import torch
from PIL import Image

from pathdino.augment import MultiCropAugmentation
from pathdino.data import (
    MultiCropDataset,
    SourceImages,
    StepBatchSampler,
    eval_sets,
    read_slide_labels,
    scan_image_folder,
)
from pathdino.runtime import DataError, MissingPathError


def _png(path, size, value=100):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(path)


def test_folder_counts_non_images_and_mixed_sizes(tmp_path, capsys):
    _png(tmp_path / "a" / "1.png", (32, 32))
    _png(tmp_path / "a" / "2.png", (40, 32))
    _png(tmp_path / "b" / "3.jpg", (32, 32))
    (tmp_path / "b" / "notes.txt").write_text("x")
    (tmp_path / "b" / "Thumbs.db").write_bytes(b"\x00")
    scan = scan_image_folder(tmp_path, labelled=True)
    assert scan.class_names == ["a", "b"] and scan.labels == [0, 0, 1]
    assert len(scan.skipped) == 2
    out = capsys.readouterr().out
    assert "skipped 2 non-image files" in out and "MIXED sizes" in out


def test_folder_errors(tmp_path):
    with pytest.raises(MissingPathError, match="class_name"):
        scan_image_folder(tmp_path / "missing", labelled=True)
    (tmp_path / "only.txt").write_text("x")
    with pytest.raises(DataError, match="no images"):
        scan_image_folder(tmp_path, labelled=False)
    _png(tmp_path / "one" / "1.png", (8, 8))
    with pytest.raises(ValueError, match=">= 2 class"):
        scan_image_folder(tmp_path, labelled=True)
    (tmp_path / "two").mkdir()
    (tmp_path / "two" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png"):
        scan_image_folder(tmp_path, labelled=True)


def test_step_sampler_and_augmentation_are_deterministic(rng):
    sources = SourceImages(images=rng.integers(0, 256, (10, 24, 24, 3), dtype=np.uint8))
    ds = MultiCropDataset(sources, MultiCropAugmentation(16, 8, 2))
    full = list(StepBatchSampler(10, 3, seed=5, start=0, steps=4))
    resumed = list(StepBatchSampler(10, 3, seed=5, start=2, steps=4))
    assert full[2:] == resumed
    item = full[1][0]
    a, b = ds[item], ds[item]
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_builtin_eval_sets_have_room_for_rotation():
    sets = eval_sets("", 32, 3, 4, 20.0, 0)
    assert set(sets) == {"synthetic", "ihc"}
    images, labels = sets["synthetic"]
    assert images.shape == (12, 48, 48, 3) and sorted(set(labels)) == [0, 1, 2, 3]
    ihc, ihc_labels = sets["ihc"]
    assert ihc.shape[1:] == (48, 48, 3) and set(ihc_labels) == {0, 1, 2}


def test_slide_labels_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="labels.csv"):
        read_slide_labels(tmp_path)
    (tmp_path / "labels.csv").write_text("slide,label\na.tif,tumour\n")
    with pytest.raises(FileNotFoundError, match="a.tif"):
        read_slide_labels(tmp_path)
    (tmp_path / "labels.csv").write_text("slide,label\na.tif;tumour\n")
    with pytest.raises(ValueError, match="line 2"):
        read_slide_labels(tmp_path)

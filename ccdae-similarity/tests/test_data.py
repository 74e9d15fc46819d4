import numpy as np
import pytest
import torch

from ccdae_similarity import data


def test_vocab_round_trip():
    dv = data.description_vocab()
    words = ("night", "square", "two", "red")
    assert dv.decode(dv.encode(words) + [dv.stoi[data.EOS], dv.stoi["red"]]) == words
    assert dv.id("not-a-word") == dv.stoi[data.UNK]
    ids = data.condition_ids([(), ("day",)], dv)
    assert ids.shape == (2, 2) and ids[0, 0] == dv.stoi[data.BOS] and ids[0, 1] == 0


def test_unreadable_and_missing_images(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="unreadable image"):
        data.load_image(bad, 16)
    with pytest.raises(FileNotFoundError, match="image file not found"):
        data.load_image(tmp_path / "missing.png", 16)


def test_real_image_loads(tmp_path):
    from PIL import Image

    Image.fromarray((np.random.default_rng(0).random((20, 30, 3)) * 255).astype(np.uint8)).save(
        tmp_path / "a.png")
    img = data.load_image(tmp_path / "a.png", 16)
    assert img.shape == (3, 16, 16) and 0 <= float(img.min()) <= float(img.max()) <= 1


def test_benchmark_loaders(tmp_path):
    (tmp_path / "cxc").mkdir()
    (tmp_path / "cxc" / "sis_test.csv").write_text(
        "image1,image2,agg_score,sampling_method\nA.jpg,B.jpg,3.6,i2i_csim\n")
    sis = data.load_real_pairs("cxc_sis", tmp_path)
    assert sis.modality == "image" and sis.a[0].endswith("coco/val2014/A.jpg")
    (tmp_path / "STS-B").mkdir()
    (tmp_path / "STS-B" / "test.tsv").write_text(
        "index\tgenre\tsentence1\tsentence2\tscore\n0\tx\tA dog runs.\tA dog is running.\t4.8\n")
    sts = data.load_real_pairs("stsb", tmp_path)
    assert sts.modality == "text" and sts.score.tolist() == [4.8]
    with pytest.raises(FileNotFoundError, match="sts_test.csv"):
        data.load_real_pairs("cxc_sts", tmp_path)
    (tmp_path / "pairs.csv").write_text("x,y\n1,2\n")
    with pytest.raises(ValueError, match="expected columns"):
        data.load_real_pairs("pairs_csv", tmp_path)


def test_empty_text_is_an_error():
    with pytest.raises(ValueError, match="empty text"):
        data.text_ids(["fine", ""], data.text_vocab())


def test_world_batch_shapes():
    b = data.sample_world_batch(np.random.default_rng(0), 3, 16, 0.0)
    assert b.images.shape == (3, 3, 16, 16) and b.images.dtype == torch.float32
    assert len(b.texts) == 3 and len(b.graphs[0]) == 6

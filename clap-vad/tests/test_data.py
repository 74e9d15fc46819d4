import numpy as np
import pytest

from clap_vad.data import SyntheticSpec, check_video_set, make_synthetic
from clap_vad.real_data import load_real, ucf_event, xd_event


def test_synthetic_shapes_and_ground_truth():
    spec = SyntheticSpec(num_scenes=2, num_events=2, train_videos_per_scene=5,
                         test_videos_per_scene=4, feature_dim=8, num_crops=3)
    train, test = make_synthetic(spec, seed=0)
    assert len(train) == 10 and len(test) == 8
    check_video_set(test, 8, 3, 16, "test")
    for f, g, e in zip(test.features, test.frame_gt, test.events):
        assert f.dtype == np.float32 and (f >= 0).all()
        assert (g.max() > 0) == (e > 0)  # anomalies planted exactly in anomalous videos
    again, _ = make_synthetic(spec, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(train.features, again.features))


def test_wrong_dimension_and_segment_count():
    _, test = make_synthetic(SyntheticSpec(num_scenes=1, feature_dim=8, num_crops=2), seed=0)
    with pytest.raises(ValueError, match="data_feature_dim"):
        check_video_set(test, 16, 2, 16, "test")
    with pytest.raises(ValueError, match="data_num_crops"):
        check_video_set(test, 8, 10, 16, "test")
    test.frame_gt[0] = test.frame_gt[0][:-16]
    with pytest.raises(ValueError, match="ground-truth frames"):
        check_video_set(test, 8, 2, 16, "test")


def _write_ucf(root, t_test=(3, 4), dim=8, gt_frames=None):
    (root / "list").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "feats").mkdir()
    train = ["Abuse001_x264", "Normal_Videos001_x264", "Arson002_x264"]
    test = ["Arson010_x264", "Normal_Videos900_x264"]
    for n in train:
        np.save(root / "feats" / f"{n}.npy", np.ones((5, 10, dim), np.float32))
    for n, t in zip(test, t_test):
        np.save(root / "feats" / f"{n}.npy", np.ones((t, 10, dim), np.float32))
    (root / "list/UCF_Train_ten_crop_i3d_complete_V1.txt").write_text(
        "\n".join(f"feats/{n}.npy" for n in train))
    (root / "list/UCF_Test_ten_crop_i3d_complete_V1.txt").write_text(
        "\n".join(f"feats/{n}.npy" for n in test))
    frames = 16 * sum(t_test) if gt_frames is None else gt_frames
    np.save(root / "labels/gt.npy", np.zeros(frames))


def test_ucf_layout_loads(tmp_path):
    _write_ucf(tmp_path)
    train, test = load_real("ucf", str(tmp_path), 16)
    assert len(train) == 3 and train.features[0].shape == (5, 10, 8)
    assert [train.event_names[e] for e in train.events] == ["Abuse", "Normal", "Arson"]
    assert [g.shape[0] for g in test.frame_gt] == [48, 64]
    with pytest.raises(ValueError, match="data_feature_dim"):
        check_video_set(train, 2048, 10, 16, "ucf train set")


def test_ucf_missing_or_malformed(tmp_path):
    with pytest.raises(FileNotFoundError, match="UCF_Train_ten_crop"):
        load_real("ucf", str(tmp_path), 16)
    _write_ucf(tmp_path / "bad", gt_frames=100)
    with pytest.raises(ValueError, match="ground truth|frames"):
        load_real("ucf", str(tmp_path / "bad"), 16)


def test_xd_crops_are_grouped(tmp_path):
    (tmp_path / "list").mkdir()
    names = []
    for video, t in (("Movie__#1_label_B2-0-0", 3), ("Show__#2_label_A", 2)):
        for k in range(5):
            p = tmp_path / f"{video}__{k}.npy"
            np.save(p, np.full((t, 4), k, np.float32))
            names.append(str(p))
    (tmp_path / "list/rgb.list").write_text("\n".join(names))
    (tmp_path / "list/rgbtest.list").write_text("\n".join(names))
    np.save(tmp_path / "gt.npy", np.zeros(16 * 5))
    train, _ = load_real("xd", str(tmp_path), 16, num_crops=5)
    assert train.features[0].shape == (3, 5, 4) and train.features[0][0, 3, 0] == 3
    assert [train.event_names[e] for e in train.events] == ["B2", "Normal"]


def test_event_names():
    assert ucf_event("RoadAccidents012_x264_i3d") == "RoadAccidents"
    assert ucf_event("Normal_Videos_345_x264") == "Normal"
    assert xd_event("v=abc__#00-01_label_G-0-0") == "G"
    assert xd_event("A.Film__#1_label_A") == "Normal"

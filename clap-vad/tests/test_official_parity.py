"""Parity with the released code (AnasEmad11/CLAP), on files written here in the official layouts.

No official file is committed. Set CLAP_OFFICIAL_LIST_DIR to the official `list/` folder to also
run the list tests on the shipped list files themselves.
"""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT

from clap_vad import pseudo_labels as pl
from clap_vad.config import load_config
from clap_vad.data import SyntheticSpec, make_synthetic
from clap_vad.metrics import _reference_ap_trapezoid, frame_ap, frame_ap_sklearn, frame_auc
from clap_vad.participant import LocalOptim, Participant
from clap_vad.partition import event_split, event_split_official
from clap_vad.real_data import load_real, read_list
from clap_vad.runtime import DataError, MissingPathError

AUTHOR = "/home/anas.al-lahham/AnomalyDetection/RTFM"
# UCF-Crime training list of the official repository: class blocks in list order (809 anomalous
# videos, then 799 normal ones), and the index ranges its event generator hard-codes.
UCF_CLASS_COUNTS = [("Abuse", 47), ("Arrest", 45), ("Arson", 41), ("Assault", 47),
                    ("Burglary", 87), ("Explosion", 29), ("Fighting", 45), ("RoadAccidents", 127),
                    ("Robbery", 145), ("Shooting", 27), ("Shoplifting", 29), ("Stealing", 95),
                    ("Vandalism", 45)]
OFFICIAL_RANGES = [(0, 47), (48, 92), (93, 133), (134, 180), (181, 267), (268, 296), (297, 341),
                   (342, 468), (469, 613), (614, 640), (641, 669), (670, 764), (765, 809)]


def _ucf_names() -> list[str]:
    """File stems in the order of the official training list (numbering is illustrative)."""
    names = [f"{c}{i + 2:03d}_x264_i3d" for c, n in UCF_CLASS_COUNTS for i in range(n)]
    return names + [f"Normal_Videos{i + 1:03d}_x264_i3d" for i in range(799)]


def _official_partition() -> list[list[int]]:
    """The official generator's assignment, written out from its constants."""
    parts = [list(range(a, b + 1)) for a, b in OFFICIAL_RANGES]
    start, end, k = 810, 1607, 13
    chunk = (end - start + 1) // k
    for i in range(k):
        stop = end + 1 if i == k - 1 else start + (i + 1) * chunk
        parts[i] += list(range(start + i * chunk, stop))
    return parts


def _events(names: list[str]) -> np.ndarray:
    classes = [c for c, _ in UCF_CLASS_COUNTS]
    return np.array([0 if n.startswith("Normal") else 1 + classes.index(n.split("_")[0][:-3])
                     for n in names])


# ----------------------------------------------------------------------------- event split


def test_official_event_split_reproduces_the_generator_ranges():
    names = _ucf_names()
    events = _events(names)
    got = [p.tolist() for p in event_split_official(events)]
    assert got == _official_partition()
    assert 47 in got[0] and names[47].startswith("Arrest")  # Arrest's first video in Abuse
    assert 809 in got[12] and names[809].startswith("Normal_Videos001")  # ... a normal in Vandalism
    by_name = event_split(events)
    owner = {}
    for rule, parts in (("official", got), ("by_name", by_name)):
        for p, idx in enumerate(parts):
            for v in idx:
                owner.setdefault(int(v), {})[rule] = p
    moved = [v for v, o in owner.items() if o["official"] != o["by_name"]]
    assert len(moved) == 25  # 12 class-boundary videos + Normal_Videos001 + 12 normal chunk edges


def test_official_event_rule_needs_an_ordered_list():
    with pytest.raises(DataError, match="by_name"):
        event_split_official(np.array([1, 2, 1, 0, 0]))
    with pytest.raises(DataError, match="by_name"):
        event_split_official(np.array([1, 0, 2, 0]))


def test_synthetic_list_is_ordered_like_the_official_one():
    train, _ = make_synthetic(SyntheticSpec(num_scenes=2, num_events=3, train_videos_per_scene=9,
                                            feature_dim=4, num_crops=1, min_snippets=8,
                                            max_snippets=9), seed=0)
    key = np.where(train.events == 0, 99, train.events)
    assert (np.diff(key) >= 0).all()
    parts = event_split_official(train.events)
    assert sum(len(p) for p in parts) == len(train)


# ----------------------------------------------------------------------------- list files


def _write_official_ucf(root: Path, train: list[str], test: list[str], t: int = 3, dim: int = 8,
                        folder: str = "features") -> None:
    """Feature files by name under root/<folder>, list lines exactly as the official lists."""
    (root / "list").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / folder).mkdir(parents=True)
    for split, names in (("Train", train), ("Test", test)):
        lines, start = [], 0
        for n in names:
            np.save(root / folder / f"{n}.npy", np.ones((t, 10, dim), np.float32))
            lines.append(f"{AUTHOR}/UCF_{split}_ten_crop_i3d/{n}.npy,{start},{start + t}")
            start += t
        (root / f"list/UCF_{split}_ten_crop_i3d_complete_V1.txt").write_text("\n".join(lines) + "\n")
    np.save(root / "labels/gt-ucf-RTFM.npy", np.zeros(16 * t * len(test), np.float32))


def test_official_list_with_author_paths_loads_as_shipped(tmp_path):
    train = ["Abuse002_x264_i3d", "Arrest002_x264_i3d", "Normal_Videos001_x264_i3d"]
    test = ["Abuse028_x264_i3d", "Normal_Videos_943_x264_i3d"]
    _write_official_ucf(tmp_path, train, test, folder="any/where/UCF_Train_ten_crop_i3d")
    tr, te = load_real("ucf", str(tmp_path), 16)
    assert tr.names == train and te.names == test
    assert [tr.event_names[e] for e in tr.events] == ["Abuse", "Arrest", "Normal"]
    assert tr.features[0].shape == (3, 10, 8)


def test_prefix_map_and_all_missing_entries_reported_at_once(tmp_path):
    train = [f"Abuse{i:03d}_x264_i3d" for i in range(2, 8)]
    test = ["Abuse028_x264_i3d"]
    _write_official_ucf(tmp_path, train, test)
    mapped = load_real("ucf", str(tmp_path), 16,
                       path_map=f"{AUTHOR}/UCF_Train_ten_crop_i3d={tmp_path}/features;"
                                f"{AUTHOR}/UCF_Test_ten_crop_i3d={tmp_path}/features")
    assert len(mapped[0]) == 6
    for n in train[1:4]:
        (tmp_path / "features" / f"{n}.npy").unlink()
    with pytest.raises(MissingPathError) as err:
        load_real("ucf", str(tmp_path), 16)
    message = str(err.value)
    assert "3 of 6 entries" in message and all(n in message for n in train[1:4])
    assert "\n" not in message
    report = Path(message.split("listed in ")[1].split(";")[0])
    assert len(report.read_text().splitlines()) == 3


@pytest.mark.skipif(not os.environ.get("CLAP_OFFICIAL_LIST_DIR"),
                    reason="set CLAP_OFFICIAL_LIST_DIR to the official list/ folder")
def test_shipped_official_lists(tmp_path):
    lists = Path(os.environ["CLAP_OFFICIAL_LIST_DIR"])
    train = read_list(lists / "UCF_Train_ten_crop_i3d_complete_V1.txt")
    test = read_list(lists / "UCF_Test_ten_crop_i3d_complete_V1.txt")
    assert (len(train), len(test)) == (1608, 290)
    _write_official_ucf(tmp_path, [Path(e.path).stem for e in train],
                        [Path(e.path).stem for e in test], t=2, dim=2)
    for name in ("Train", "Test"):  # the shipped lines themselves, not our copies
        (tmp_path / f"list/UCF_{name}_ten_crop_i3d_complete_V1.txt").write_text(
            (lists / f"UCF_{name}_ten_crop_i3d_complete_V1.txt").read_text())
    tr, _ = load_real("ucf", str(tmp_path), 16)
    assert [p.tolist() for p in event_split_official(tr.events)] == _official_partition()


# ----------------------------------------------------------------------------- concat layouts


def test_xd_official_concat_layout(tmp_path):
    """concat_XD(.npy|_test.npy) + nalist_XD.npy + a gt longer than 16 x test snippets."""
    rng = np.random.default_rng(0)
    (tmp_path / "data/datasets").mkdir(parents=True)
    (tmp_path / "data/XD").mkdir(parents=True)
    ranges = np.array([[0, 4], [4, 9], [9, 12]], dtype=np.int64)
    np.save(tmp_path / "data/datasets/concat_XD.npy", rng.random((12, 5, 6), dtype=np.float32))
    np.save(tmp_path / "data/datasets/concat_XD_test.npy", rng.random((7, 5, 6), dtype=np.float32))
    np.save(tmp_path / "data/XD/nalist_XD.npy", ranges)
    gt = np.zeros(7 * 16 + 40)  # the official evaluation cuts it: gt[:16 x test snippets]
    gt[20:50] = 1
    np.save(tmp_path / "gt.npy", gt)
    train, test = load_real("xd", str(tmp_path), 16, layout="concat", num_crops=5,
                            gt_truncate=True)
    assert [f.shape for f in train.features] == [(4, 5, 6), (5, 5, 6), (3, 5, 6)]
    np.testing.assert_array_equal(train.features[1], np.load(tmp_path / "data/datasets/concat_XD.npy")[4:9])
    assert len(test) == 1 and test.frame_gt[0].shape == (112,) and test.events.tolist() == [1]
    with pytest.raises(DataError, match="data_gt_truncate"):
        load_real("xd", str(tmp_path), 16, layout="concat", num_crops=5)


def test_ucf_official_concat_layout(tmp_path):
    """concat_UCF_V2.npy / Concat_test_10.npy cut by the list's from,to columns."""
    _write_official_ucf(tmp_path, ["Abuse002_x264_i3d", "Normal_Videos001_x264_i3d"],
                        ["Abuse028_x264_i3d"], t=3)
    (tmp_path / "data/datasets").mkdir(parents=True)
    train = np.arange(6 * 10 * 8, dtype=np.float32).reshape(6, 10, 8)
    np.save(tmp_path / "data/datasets/concat_UCF_V2.npy", train)
    np.save(tmp_path / "data/datasets/Concat_test_10.npy", np.ones((3, 10, 8), np.float32))
    tr, te = load_real("ucf", str(tmp_path), 16, layout="concat")
    np.testing.assert_array_equal(tr.features[1], train[3:6])
    assert tr.names == ["Abuse002_x264_i3d", "Normal_Videos001_x264_i3d"] and len(te) == 1


# ----------------------------------------------------------------------------- pseudo-labels


def test_short_video_window_official_rule():
    """int(0.2 T) = 0 for T < 5: the official code gives no positive snippet."""
    signal = np.array([0.0, 1.0, 0.0, 0.5])
    np.testing.assert_array_equal(pl.max_variation_window(signal, 0.2), np.zeros(4))
    np.testing.assert_array_equal(pl._reference_max_variation_window(signal, 0.2), np.zeros(4))
    assert pl.max_variation_window(signal, 0.2, at_least_one=True).sum() == 1
    rng = np.random.default_rng(1)
    for t in range(1, 12):  # vectorised == official loop for both rules
        s = rng.random(t)
        for flag in (False, True):
            np.testing.assert_array_equal(pl.max_variation_window(s, 0.2, flag),
                                          pl._reference_max_variation_window(s, 0.2, flag))


# ----------------------------------------------------------------------------- metrics


def test_official_ap_is_the_trapezoid_and_differs_with_ties(rng):
    scores = np.round(rng.random(400), 1)  # heavy ties
    gt = (rng.random(400) < 0.3).astype(float)
    assert frame_ap(scores, gt) == pytest.approx(_reference_ap_trapezoid(scores, gt), abs=1e-12)
    assert abs(frame_ap(scores, gt) - frame_ap_sklearn(scores, gt)) > 1e-3
    from sklearn.metrics import auc, roc_curve  # the official AUC: auc(roc_curve)

    fpr, tpr, _ = roc_curve(gt, scores)
    assert frame_auc(scores, gt) == pytest.approx(auc(fpr, tpr), abs=1e-12)


# ----------------------------------------------------------------------------- loader order


class _Recorder(torch.nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(dim, 1)
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x[:, 0, 0].clone())
        return torch.sigmoid(self.lin(x)).squeeze(-1).mean(dim=1)


@pytest.mark.parametrize("shuffle", [False, True])
def test_client_loader_order(shuffle):
    train, _ = make_synthetic(SyntheticSpec(num_scenes=1, num_events=1, train_videos_per_scene=3,
                                            feature_dim=4, num_crops=1, min_snippets=8,
                                            max_snippets=9), seed=0)
    part = Participant(train, LocalOptim(epochs=2, batch_size=5, shuffle=shuffle), 0, 0)
    part.x[:, 0, 0] = torch.arange(part.num_snippets, dtype=torch.float32)  # snippet ids
    model = _Recorder(4)
    part.train(model, np.zeros(part.num_snippets, np.float32), 1, torch.device("cpu"))
    seen = torch.cat(model.seen).long().view(2, -1)  # [epochs, N]
    in_order = torch.arange(part.num_snippets)
    assert all(torch.equal(e, in_order) for e in seen) == (not shuffle)


# ----------------------------------------------------------------------------- presets


def test_paper_presets_follow_the_official_runs():
    ucf = load_config(ROOT / "configs/paper.toml")
    assert (ucf.steps, ucf.local_epochs, ucf.batch_size, ucf.lr, ucf.split) == (1, 10, 128, 0.01,
                                                                                "scene")
    xd = load_config(ROOT / "configs/paper_xd_collaborative.toml")
    assert (xd.steps, xd.local_epochs, xd.split, xd.num_participants) == (10, 1, "random", 5)
    for name in ("paper", "paper_ucf_central", "paper_ucf_local", "paper_xd_collaborative",
                 "paper_xd_central", "paper_xd_local"):
        cfg = load_config(ROOT / f"configs/{name}.toml")
        assert not cfg.train_shuffle and cfg.pl_window_rule == "official", name
        assert cfg.model_xavier_init == (cfg.data_name == "ucf"), name

import json

import numpy as np
import pytest
import torch

from pairdetr.data import (
    LABEL_BODY_ONLY,
    LABEL_PAIR,
    PairDataset,
    PairRecord,
    StepBatchSampler,
    clip_boxes,
    collate,
    load_bfjdet_json,
    load_crowdhuman_odgt,
    load_dataset_records,
    make_synthetic_records,
    pairs_to_single_boxes,
    record_targets,
)

ODGT_LINES = [
    {"ID": "273271,c9db000d5146c15", "gtboxes": [
        {"tag": "person", "fbox": [10, 20, 40, 100], "hbox": [20, 22, 14, 16],
         "vbox": [10, 20, 40, 50], "extra": {"ignore": 0},
         "head_attr": {"ignore": 0, "occ": 0, "unsure": 0}, "f_bbox": [22, 25, 10, 12]},
        {"tag": "person", "fbox": [60, 10, 30, 90], "hbox": [65, 12, 12, 14],
         "vbox": [60, 10, 30, 90], "extra": {"ignore": 1}, "head_attr": {"ignore": 1}},
        {"tag": "mask", "fbox": [100, 0, 20, 20], "hbox": [100, 0, 20, 20],
         "vbox": [100, 0, 20, 20], "extra": {"ignore": 1}}]},
    {"ID": "empty_image", "gtboxes": []},
]


def _write_odgt(path, bad_line=True):
    lines = [json.dumps(ODGT_LINES[0])]
    if bad_line:
        lines.append('{"ID": "broken", "gtboxes": [')
    lines.append(json.dumps(ODGT_LINES[1]))
    path.write_text("\n".join(lines) + "\n")


def test_odgt_parsing_fixture(tmp_path):
    path = tmp_path / "annotation_val.odgt"
    _write_odgt(path, bad_line=False)
    records, stats = load_crowdhuman_odgt(path, tmp_path / "Images")
    assert len(records) == 2 and stats["bad_lines"] == []
    rec = records[0]
    np.testing.assert_allclose(rec.bodies[0], [10, 20, 50, 120])
    np.testing.assert_allclose(rec.faces[0], [22, 25, 32, 37])
    np.testing.assert_allclose(rec.heads[0], [20, 22, 34, 38])
    assert rec.has_face.tolist() == [True, False, False]
    assert rec.ignore.tolist() == [False, True, True]
    np.testing.assert_allclose(rec.vis_ratio[0], 0.5)
    assert rec.path.endswith("Images/273271,c9db000d5146c15.jpg")
    assert len(records[1].bodies) == 0


def test_odgt_malformed_line_skip_or_stop(tmp_path):
    path = tmp_path / "annotation_train.odgt"
    _write_odgt(path, bad_line=True)
    with pytest.warns(UserWarning, match=r"annotation_train.odgt:2: malformed"):
        records, stats = load_crowdhuman_odgt(path, tmp_path, skip_bad_lines=True)
    assert len(records) == 2 and stats["bad_lines"] == [2]
    with pytest.raises(ValueError, match=r":2: malformed"):
        load_crowdhuman_odgt(path, tmp_path, skip_bad_lines=False)


def test_missing_files_name_the_expected_tree(tmp_path):
    with pytest.raises(FileNotFoundError, match="annotation_train.odgt"):
        load_dataset_records("crowdhuman", str(tmp_path), "train")
    with pytest.raises(FileNotFoundError, match="bhfmatch"):
        load_dataset_records("citypersons", str(tmp_path), "val")
    with pytest.raises(FileNotFoundError, match="data_root"):
        load_dataset_records("crowdhuman", str(tmp_path / "nope"), "train")


def test_bfjdet_json(tmp_path):
    data = {"images": [{"id": 1, "file_name": "frankfurt_000000_000294_leftImg8bit.png",
                        "width": 2048, "height": 1024}],
            "annotations": [
                {"image_id": 1, "category_id": 1, "bbox": [959, 598, 40, 160],
                 "f_bbox": [978, 603, 11, 14], "h_bbox": [977, 600, 19, 21], "vis_ratio": 0.95,
                 "ignore": 0, "height": 160},
                {"image_id": 1, "category_id": 1, "bbox": [100, 500, 30, 120],
                 "f_bbox": [0, 0, 0, 0], "h_bbox": [105, 502, 12, 14], "vis_ratio": 0.5,
                 "ignore": 0, "height": 120}]}
    path = tmp_path / "instances_val_bhfmatch_new.json"
    path.write_text(json.dumps(data))
    records, _ = load_bfjdet_json(path, tmp_path / "leftImg8bit" / "val")
    rec = records[0]
    assert rec.has_face.tolist() == [True, False]
    np.testing.assert_allclose(rec.faces[0], [978, 603, 989, 617])
    assert rec.path.endswith("leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png")


def test_targets_clip_count_and_faceless_bodies_use_head():
    rec = PairRecord("x", 100, 80, bodies=np.array([[-10, 10, 30, 90], [50, 10, 70, 60]], float),
                     faces=np.array([[0, 12, 8, 20], [0, 0, 0, 0]], float),
                     heads=np.array([[0, 10, 10, 22], [55, 10, 65, 20]], float),
                     has_face=np.array([True, False]), vis_ratio=np.ones(2),
                     ignore=np.zeros(2, bool))
    target, n_clipped = record_targets(rec, 100, 80)
    assert n_clipped == 1  # the first body sticks out left and bottom
    assert target["labels"].tolist() == [LABEL_PAIR, LABEL_BODY_ONLY]
    torch.testing.assert_close(target["boxes"][0, :4], torch.tensor([0.15, 0.5625, 0.3, 0.875]))
    torch.testing.assert_close(target["boxes"][1, 4:], torch.tensor([0.6, 0.1875, 0.1, 0.125]))
    single = pairs_to_single_boxes(target)
    assert single["labels"].tolist() == [0, 0, 1] and single["boxes"].shape == (3, 4)
    clipped, n = clip_boxes(np.array([[1.0, 1, 5, 5]]), 10, 10)
    assert n == 0 and clipped.tolist() == [[1, 1, 5, 5]]


def test_synthetic_is_reproducible_and_paired():
    a = make_synthetic_records(3, seed=5, height=64, width=80)
    b = make_synthetic_records(3, seed=5, height=64, width=80)
    for ra, rb in zip(a, b):
        np.testing.assert_array_equal(ra.image, rb.image)
        np.testing.assert_array_equal(ra.bodies, rb.bodies)
    recs = make_synthetic_records(30, seed=1, height=96, width=120)
    has_face = np.concatenate([r.has_face for r in recs])
    vis = np.concatenate([r.vis_ratio for r in recs])
    assert 0.2 < has_face.mean() < 0.95  # some faces hidden (back view / occlusion)
    assert (vis < 0.65).any() and (vis > 0.9).any()  # occlusion levels vary
    for r in recs:  # every visible face lies inside its body box
        f, bod = r.faces[r.has_face], r.bodies[r.has_face]
        assert (f[:, 0] >= bod[:, 0] - 1e-6).all() and (f[:, 3] <= bod[:, 3] + 1e-6).all()


def test_dataset_flip_collate_and_bad_image(tmp_path):
    recs = make_synthetic_records(2, seed=0, height=64, width=80)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    recs.append(PairRecord("bad", 0, 0, np.zeros((0, 4)), np.zeros((0, 4)), np.zeros((0, 4)),
                           np.zeros(0, bool), np.zeros(0), np.zeros(0, bool), path=str(bad)))
    ds = PairDataset(recs, 64, 80)
    _, t = ds[(0, False, 64)]
    _img_f, t_f = ds[(0, True, 64)]
    torch.testing.assert_close(t_f["boxes"][:, 0], 1 - t["boxes"][:, 0])
    torch.testing.assert_close(t_f["boxes"][:, 4], 1 - t["boxes"][:, 4])
    with pytest.warns(UserWarning, match="cannot decode image"):
        assert ds[2] is None
    batch = collate([ds[(0, False, 64)], None, ds[(1, False, 48)]])
    assert batch["pixel_values"].shape[0] == 2 and batch["pixel_mask"][1].sum() < 64 * 80
    assert collate([None]) is None


def test_empty_image_gives_zero_targets():
    rec = PairRecord("e", 40, 40, np.zeros((0, 4)), np.zeros((0, 4)), np.zeros((0, 4)),
                     np.zeros(0, bool), np.zeros(0), np.zeros(0, bool),
                     image=np.zeros((40, 40, 3), np.uint8))
    _, target = PairDataset([rec], 32, 40)[0]
    assert target["boxes"].shape == (0, 8) and target["labels"].shape == (0,)


def test_step_sampler_is_a_function_of_the_step():
    full = list(StepBatchSampler(10, 3, steps=6, seed=1))
    resumed = list(StepBatchSampler(10, 3, steps=6, seed=1, start=4))
    assert full[4:] == resumed
    ranks = [StepBatchSampler(10, 2, 3, 1, rank=r, world=2).batch_for_step(1) for r in (0, 1)]
    assert not {i for i, _, _ in ranks[0]} & {i for i, _, _ in ranks[1]}

"""Loaders: synthetic scene, scaling, Blender / nerfstudio / LLFF formats and bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from alpha_invariance.data import (
    build_scene_data,
    load_blender,
    load_llff,
    load_nerfstudio,
    make_synthetic,
    scale_scene,
)


def test_synthetic_shapes_and_scale():
    d1 = make_synthetic(image_size=8, num_train=2, num_test=1, k=1.0)
    assert d1.rays_o.shape == (128, 3) and d1.rgb.shape == (128, 3)
    assert d1.test_views[0].depth.shape == (64,)
    d10 = make_synthetic(image_size=8, num_train=2, num_test=1, k=10.0)
    torch.testing.assert_close(d10.rgb, d1.rgb, atol=1e-5, rtol=0)  # identical by construction
    torch.testing.assert_close(d10.rays_o, d1.rays_o * 10, atol=1e-4, rtol=1e-5)
    assert d10.far - d10.near == pytest.approx(10 * (d1.far - d1.near))


@pytest.mark.parametrize("k", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_scale_factor(k):
    d = make_synthetic(image_size=4, num_train=1, num_test=1)
    with pytest.raises(ValueError, match="scale"):
        scale_scene(d, k)
    with pytest.raises(ValueError, match="scale"):
        build_scene_data("synthetic", "", k)


def _write_png(path, size=(4, 4), rgba=True):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = (np.random.default_rng(0).random((size[1], size[0], 4 if rgba else 3)) * 255)
    Image.fromarray(arr.astype(np.uint8)).save(path)


def _blender(root, sizes=((4, 4), (4, 4)), drop=None):
    eye = np.eye(4)
    eye[2, 3] = 4.0
    for split in ("train", "test"):
        frames = []
        for i, size in enumerate(sizes):
            _write_png(root / split / f"r_{i}.png", size)
            frames.append({"file_path": f"./{split}/r_{i}", "transform_matrix": eye.tolist()})
        meta = {"camera_angle_x": 0.69, "frames": frames}
        if drop:
            meta.pop(drop)
        (root / f"transforms_{split}.json").write_text(json.dumps(meta))


def test_blender_loader(tmp_path):
    _blender(tmp_path)
    data = load_blender(tmp_path)
    assert data.rays_o.shape == (32, 3) and len(data.test_views) == 2
    assert data.rgb.min() >= 0 and data.rgb.max() <= 1
    scaled = build_scene_data("blender", str(tmp_path), 0.5)
    assert scaled.near == pytest.approx(1.0) and scaled.far == pytest.approx(3.0)
    torch.testing.assert_close(scaled.rays_o, data.rays_o * 0.5)


@pytest.mark.parametrize("drop", ["frames", "camera_angle_x"])
def test_blender_malformed(tmp_path, drop):
    _blender(tmp_path, drop=drop)
    with pytest.raises(ValueError, match=drop):
        load_blender(tmp_path)


def test_blender_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="transforms_train.json"):
        load_blender(tmp_path)


def test_inconsistent_image_sizes(tmp_path):
    _blender(tmp_path, sizes=((4, 4), (6, 4)))
    with pytest.raises(ValueError, match="inconsistent size"):
        load_blender(tmp_path)


def test_nerfstudio_loader_and_missing_intrinsics(tmp_path):
    frames = []
    for i in range(3):
        _write_png(tmp_path / "images" / f"f{i}.png", rgba=False)
        m = np.eye(4)
        m[0, 3] = i
        frames.append({"file_path": f"images/f{i}.png", "transform_matrix": m.tolist()})
    meta = {"fl_x": 5.0, "fl_y": 5.0, "cx": 2.0, "cy": 2.0, "w": 4, "h": 4, "frames": frames}
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    data = load_nerfstudio(tmp_path)
    assert len(data.test_views) == 1 and data.rays_o.shape == (32, 3)
    meta.pop("fl_x")
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="intrinsics"):
        load_nerfstudio(tmp_path)


def test_llff_loader(tmp_path):
    n = 9
    poses = np.zeros((n, 3, 5))
    poses[:, :, :3] = np.eye(3)
    poses[:, :, 3] = np.arange(n)[:, None] * 0.1
    poses[:, :, 4] = [4, 4, 5.0]
    arr = np.concatenate([poses.reshape(n, 15), np.tile([[2.0, 10.0]], (n, 1))], 1)
    np.save(tmp_path / "poses_bounds.npy", arr)
    with pytest.raises(ValueError, match="images"):
        load_llff(tmp_path)
    for i in range(n):
        _write_png(tmp_path / "images" / f"{i:03d}.png", rgba=False)
    data = load_llff(tmp_path)
    assert len(data.test_views) == 2 and data.near > 0 and data.far > data.near


def test_blender_capture_round_trip(tmp_path):
    """write_blender_capture (smoke runs) is read back by load_blender: same rays, images to
    8-bit rounding."""
    from alpha_invariance.data import write_blender_capture

    root = write_blender_capture(tmp_path / "cap", image_size=12, num_train=2, num_test=1)
    data = load_blender(root, near=1.0, far=5.0)
    ref = make_synthetic(image_size=12, num_train=2, num_test=1)
    torch.testing.assert_close(data.rays_o, ref.rays_o, atol=1e-5, rtol=0)
    torch.testing.assert_close(data.rays_d, ref.rays_d, atol=1e-5, rtol=0)
    torch.testing.assert_close(data.rgb, ref.rgb, atol=1 / 255, rtol=0)
    torch.testing.assert_close(data.test_views[0].rgb, ref.test_views[0].rgb, atol=1 / 255, rtol=0)

import json
import shutil

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from eye_radiance.cornea import LIMBUS_RADIUS_OFFICIAL
from eye_radiance.data import (
    SENSOR_WIDTH_MM,
    camera_to_world,
    load_capture,
    load_ground_truth,
    read_image,
)
from eye_radiance.runtime import DataError, MissingPathError, UserError


def _copy(small_capture, dest):
    """A copy whose transforms list paths relative to the capture (./name), so that editing
    the copy's files is what the loader reads (absolute paths that exist are used as written)."""
    shutil.copytree(small_capture, dest)
    for split in ("train", "test"):
        path = dest / f"transforms_{split}.json"
        meta = json.loads(path.read_text())
        for f in meta["frames"]:
            f["file_path"] = "./" + f["file_path"].split("/")[-1]
            f["mask_path"] = "./train_masks/" + f["mask_path"].split("/")[-1]
        path.write_text(json.dumps(meta))
    return dest


def test_official_layout_is_written_and_read(small_capture):
    meta = json.loads((small_capture / "transforms_train.json").read_text())
    assert meta == json.loads((small_capture / "transforms_test.json").read_text())
    assert (meta["image_width"], meta["image_height"]) == (128, 64)
    frames = meta["frames"]
    assert len(frames) == 4 and frames[0]["file_path"] == frames[1]["file_path"]  # one per eye
    assert [f["order"] for f in frames[:2]] == ["right_eye", "left_eye"]
    assert frames[1]["mask_path"].endswith("train_masks/frame_0000_1.png")
    assert len(frames[0]["ellipse_params"]) == 5 and frames[0]["file_path"].startswith("/")
    raw = tifffile.imread(frames[0]["file_path"])
    assert raw.dtype == np.uint16 and raw.shape == (64, 128, 3) and raw.max() > 256
    cap = load_capture(small_capture, erode_px=1)
    assert cap.num_eyes == 4 and cap.skipped == [] and cap.is_left.tolist() == [0, 1, 0, 1]
    # colours are the 16-bit values / 65535 (not 8-bit)
    u, v = cap.pixels[0].tolist()
    torch.testing.assert_close(cap.rgb[0], torch.from_numpy(raw[v, u] / 65535.0).float())
    # fl_x from the 13.2 mm sensor and depth = 5.5186 * fx / rx
    fl = frames[0]["fl_x"]
    assert abs(cap.fx[0].item() - fl) < 1e-3 and SENSOR_WIDTH_MM == 13.2
    rx = frames[0]["ellipse_params"][2]
    assert abs(cap.depth_mm[0].item() - LIMBUS_RADIUS_OFFICIAL * fl / rx) < 1e-2


def test_initial_pose_is_near_the_truth(small_capture):
    cap = load_capture(small_capture, erode_px=1)
    gt = load_ground_truth(small_capture)
    from eye_radiance.cornea import apex_positions

    m = cap.num_eyes
    apex = apex_positions(cap.centre_px, cap.depth_mm, cap.fx, cap.fy, torch.tensor(128.0),
                          torch.tensor(64.0), torch.zeros(m), torch.zeros(m, 2))
    err = (apex - torch.tensor(gt["apex"])).norm(dim=-1)
    assert (err < 60).all(), err  # an 8-pixel limbus: the depth is off by up to ~10%


def test_a_moved_capture_resolves_paths_against_its_folder(small_capture, tmp_path):
    moved = tmp_path / "elsewhere" / "capture"
    shutil.copytree(small_capture, moved)
    a = load_capture(small_capture, erode_px=1)
    shutil.rmtree(tmp_path / "elsewhere")
    shutil.copytree(small_capture, moved)
    # the absolute paths still point at the original: hide it by renaming the copy's source
    meta = json.loads((moved / "transforms_train.json").read_text())
    for f in meta["frames"]:
        f["file_path"] = "/nonexistent/root/capture/" + f["file_path"].split("/")[-1]
        f["mask_path"] = "/nonexistent/root/capture/train_masks/" + f["mask_path"].split("/")[-1]
    (moved / "transforms_train.json").write_text(json.dumps(meta))
    b = load_capture(moved, erode_px=1)
    assert torch.equal(a.rgb, b.rgb) and b.image_paths[0].startswith(str(moved))


def test_tiff_scaling_official_rule_and_dtype(tmp_path):
    dark = np.full((4, 4, 3), 200, dtype=np.uint16)  # a very dark 16-bit frame
    tifffile.imwrite(tmp_path / "d.tif", dark)
    assert abs(read_image(tmp_path / "d.tif")[0, 0, 0] - 200 / 65535) < 1e-7
    assert abs(read_image(tmp_path / "d.tif", "official")[0, 0, 0] - 200 / 255) < 1e-6
    Image.fromarray(np.full((4, 4, 3), 51, np.uint8)).save(tmp_path / "p.png")
    assert abs(read_image(tmp_path / "p.png")[0, 0, 0] - 0.2) < 1e-6


def test_used_eye_filter_and_missing_ellipse_params(small_capture, tmp_path):
    assert load_capture(small_capture, used_eye="left_eye", erode_px=1).is_left.all()
    cap_dir = tmp_path / "c"
    shutil.copytree(small_capture, cap_dir)
    meta = json.loads((cap_dir / "transforms_train.json").read_text())
    for f in meta["frames"]:
        del f["ellipse_params"]  # the official synthetic branch: centre/radius from the mask
    (cap_dir / "transforms_train.json").write_text(json.dumps(meta))
    cap = load_capture(cap_dir, erode_px=1)
    assert cap.num_eyes == 4 and (cap.radius_px > 6).all() and (cap.radius_px < 10).all()


def test_bad_eye_images_are_skipped_or_stop(small_capture, tmp_path):
    cap_dir = _copy(small_capture, tmp_path / "c")
    Image.fromarray(np.zeros((64, 128), np.uint8)).save(cap_dir / "train_masks/frame_0001_0.png")
    meta = json.loads((cap_dir / "transforms_train.json").read_text())
    meta["frames"][2]["ellipse_params"] = []  # derive from the (now empty) mask
    (cap_dir / "transforms_train.json").write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match="frame 2"):
        cap = load_capture(cap_dir, erode_px=1)
    assert cap.frame_ids == [0, 1, 3] and len(cap.skipped) == 1 and "empty" in cap.skipped[0]
    with pytest.raises(DataError, match="frame 2.*empty mask"):
        load_capture(cap_dir, erode_px=1, on_bad_frame="error")


def test_missing_and_malformed_inputs_are_user_errors(small_capture, tmp_path):
    with pytest.raises(MissingPathError, match="capture folder not found"):
        load_capture(tmp_path / "nope")
    with pytest.raises(MissingPathError, match="transforms_train.json"):
        load_capture(tmp_path)
    cap_dir = _copy(small_capture, tmp_path / "c")
    (cap_dir / "frame_0001.tif").unlink()
    with pytest.raises(MissingPathError, match="frame_0001.tif"):
        load_capture(cap_dir)
    (cap_dir / "transforms_train.json").write_text('{"frames": [}')
    with pytest.raises(UserError, match="not valid JSON"):
        load_capture(cap_dir)


def test_camera_to_world_with_the_official_placeholder():
    c2w = torch.tensor([[-1.0, 0, 0, 0], [0, 0, 1.0, 0], [0, 1.0, 0, 0]])[None]
    o, d = camera_to_world(torch.tensor([[1.0, 2.0, 3000.0]]), torch.tensor([[0.0, 0, 1]]), c2w)
    torch.testing.assert_close(o, torch.tensor([[-0.001, -3.0, -0.002]]))
    torch.testing.assert_close(d, torch.tensor([[0.0, -1.0, 0.0]]))

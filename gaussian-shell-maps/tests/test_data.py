import json
import math

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


# --------------------------------------------------------- official dataset layouts (issue 25)
def _labels(n, rng):
    return random_labels(n, rng).numpy()


def _write_mat(path, names, rows):
    import scipy.io

    cells = np.empty((len(names), 2), dtype=object)  # MATLAB cell array {name, [1, 107]}
    for i, (n, r) in enumerate(zip(names, rows)):
        cells[i, 0], cells[i, 1] = n, np.asarray(r, dtype=np.float64)[None]
    scipy.io.savemat(str(path), {"labels": cells})


def _images(root, names, size=(24, 12), value=200):
    (root / "images").mkdir(parents=True, exist_ok=True)
    for n in names:
        Image.fromarray(np.full(size + (3,), value, np.uint8)).save(root / n)


def test_dataset_mat_and_both_json_forms_give_the_same_items(tmp_path, rng):
    names = ["images/b.png", "images/a.png"]
    rows = _labels(2, rng)
    for layout in ("mat", "json_dict", "json_list"):
        root = tmp_path / layout
        _images(root, names)
        if layout == "mat":
            _write_mat(root / "dataset.mat", names, rows)
        elif layout == "json_dict":
            (root / "dataset.json").write_text(json.dumps(
                {"labels": {n: r.tolist() for n, r in zip(names, rows)}}))
        else:
            (root / "dataset.json").write_text(json.dumps(
                {"labels": [[n, r.tolist()] for n, r in zip(names, rows)]}))
        ds = HumanImageFolder(root, 16, divide_fx=False)
        assert len(ds) == 2 and ds.files[0].name == "a.png"  # sorted, as the official reader
        torch.testing.assert_close(ds.labels[0], torch.from_numpy(rows[1]))
        assert ds[1][0].shape == (3, 16, 16)


def test_masks_are_composited_onto_the_background(tmp_path, rng):
    _images(tmp_path, ["images/a.png"], size=(8, 8), value=0)  # a black image
    (tmp_path / "masks").mkdir()
    mask = np.zeros((8, 8), np.uint8)
    mask[:, :4] = 255  # left half is the person
    Image.fromarray(mask).save(tmp_path / "masks" / "a.png")
    (tmp_path / "dataset.json").write_text(json.dumps(
        {"labels": {"images/a.png": _labels(1, rng)[0].tolist()}}))
    for background, value in (("white", 1.0), ("gray", 0.0)):
        img, _ = HumanImageFolder(tmp_path, 8, background=background)[0]
        torch.testing.assert_close(img[:, :, :4], torch.full((3, 8, 4), -1.0))  # black person
        torch.testing.assert_close(img[:, :, 4:], torch.full((3, 8, 4), value))  # background
    (tmp_path / "masks" / "a.png").unlink()
    with pytest.raises(FileNotFoundError, match="masks are missing"):
        HumanImageFolder(tmp_path, 8)


def test_tall_images_are_padded_and_fx_divided_by_the_aspect(tmp_path, rng):
    _images(tmp_path, ["images/a.png"], size=(32, 16), value=0)  # SHHQ-like 2:1, black
    row = _labels(1, rng)[0]
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": {"images/a.png": row.tolist()}}))
    ds = HumanImageFolder(tmp_path, 16)
    img, label = ds[0]
    assert math.isclose(float(label[16]), float(row[16]) / 2, rel_tol=1e-6)  # official get_label
    torch.testing.assert_close(label[20], torch.tensor(row[20]))  # fy unchanged
    torch.testing.assert_close(img[:, :, 5:11], torch.full((3, 16, 6), -1.0))  # the image
    torch.testing.assert_close(img[:, :, :3], torch.full((3, 16, 3), 1.0))  # white padding
    old = HumanImageFolder(tmp_path, 16, divide_fx=False)  # official --old_code
    assert math.isclose(float(old.labels[0, 16]), float(row[16]), rel_tol=1e-6)


def test_malformed_label_files_name_the_layout(tmp_path, rng):
    from gaussian_shell_maps.runtime import DataError

    _images(tmp_path, ["images/a.png"])
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": 5}))
    with pytest.raises(DataError, match="neither .name: row. nor"):
        HumanImageFolder(tmp_path, 16)
    (tmp_path / "dataset.json").unlink()
    import scipy.io

    scipy.io.savemat(str(tmp_path / "dataset.mat"), {"poses": np.zeros(3)})
    with pytest.raises(DataError, match="no variable 'labels'"):
        HumanImageFolder(tmp_path, 16)


def test_official_convention_labels_render_an_upright_body_in_frame(template, rng):
    """Camera on -z, body flipped by global_orient (pi, 0, 0): head above pelvis, in frame."""
    from gaussian_shell_maps import shells as sh
    from gaussian_shell_maps.cameras import official_labels, project_points

    labels = random_labels(6, rng, convention="official")
    ref = official_labels(torch.zeros(1, 69), torch.zeros(1, 10), torch.zeros(1))[0]
    torch.testing.assert_close(labels[:, 25:28].norm(dim=1).min(), torch.tensor(2.0),
                               atol=1.2, rtol=0)  # |global_orient| near pi
    assert ref[11] < -10 and ref[16] > 4  # camera on -z (c2w translation z), fx ~ 4.9
    cam = split_label(labels, 64)
    _, joints = sh.pose_shells(template, template.v_template[None], cam["betas"],
                               cam["body_pose"], cam["global_orient"])
    uv = project_points(joints, cam["viewmats"], cam["Ks"])
    assert (uv[:, 15, 1] < uv[:, 0, 1]).all()  # head above pelvis: upright
    assert ((uv > 0) & (uv < 64)).all()
    ds = SyntheticMannequins(template, 2, 32, num_points=800, convention="official")
    assert (ds[0][0] < 0.9).any()  # the body is visible

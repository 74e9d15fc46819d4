import importlib.util
import os
import random
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image, ImageFilter

from pathdino.augment import (
    MultiCropAugmentation,
    eval_transform,
    inner_crop_size,
    rotate_center_crop,
    rotate_continuous,
    rotate_exact,
    to_pil,
)


def _image(h=12, w=12, seed=0):
    return torch.randint(0, 256, (3, h, w), generator=torch.Generator().manual_seed(seed),
                         dtype=torch.uint8)


def _unique_colours(h, w):
    """uint8 [3, h, w] whose pixels all have different RGB triples, none black."""
    assert h * w * 9973 < 256**3
    codes = np.random.default_rng(0).permutation(1 + np.arange(h * w) * 9973)  # distinct, > 0
    rgb = np.stack([(codes >> 16) & 255, (codes >> 8) & 255, codes & 255], -1).astype(np.uint8)
    return torch.from_numpy(rgb.reshape(h, w, 3)).permute(2, 0, 1).contiguous()


def _codes(img: torch.Tensor) -> np.ndarray:
    """[3, H, W] uint8 -> one integer per pixel (R * 65536 + G * 256 + B)."""
    rgb = img.numpy().astype(np.int64)
    return (rgb[0] << 16 | rgb[1] << 8 | rgb[2]).ravel()


def _as_tensor(im: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1)  # [3, H, W] uint8


def test_exact_rotation_is_a_pixel_permutation():
    img = _image()
    rot = rotate_exact(img, 90)
    expected = torch.from_numpy(np.rot90(img.numpy(), k=1, axes=(1, 2)).copy())
    assert torch.equal(rot, expected)
    # same as torchvision's counter-clockwise rotate on a square image
    assert torch.equal(rot, TF.rotate(img, 90.0))
    assert torch.equal(rotate_exact(img, 360), img)
    four = img
    for _ in range(4):
        four = rotate_exact(four, 90)
    assert torch.equal(four, img)
    # the continuous path does not interpolate at multiples of 90
    assert torch.equal(rotate_continuous(img, 270.0), rotate_exact(img, 270))
    with pytest.raises(ValueError):
        rotate_exact(img, 45)


def test_rotate_center_crop_has_no_empty_corners():
    img = torch.full((3, 46, 46), 200, dtype=torch.uint8)
    size = inner_crop_size(46) - 1
    for angle in (17.0, 45.0, 133.0):
        assert rotate_center_crop(img, angle, size).min() > 0


@pytest.mark.parametrize("historotate", [True, False])
def test_multicrop_shapes(historotate):
    torch.manual_seed(0)
    aug = MultiCropAugmentation(32, 16, 3, historotate=historotate)
    crops = aug(_image(48, 48))
    assert [tuple(c.shape) for c in crops] == [(3, 32, 32)] * 2 + [(3, 16, 16)] * 3
    assert all(c.dtype == torch.float32 and torch.isfinite(c).all() for c in crops)


def test_global_crop_rotation_only_exact_angles():
    """With crops covering the whole image and colour ops off, a global view of a 512-path image
    is one of the four exact rotations of the input: no interpolation artefacts."""
    torch.manual_seed(0)
    aug = MultiCropAugmentation(24, 8, 0, global_scale=(1.0, 1.0))
    aug.global_crop.ratio = (1.0, 1.0)
    aug.flip_jitter = lambda x: x
    aug.blur_g1.p = -1.0  # never
    aug.normalize = _as_tensor
    img = _image(24, 24)
    candidates = [rotate_exact(img, a) for a in (90, 180, 270, 360)]
    seen = set()
    for _ in range(12):
        view = aug._global(to_pil(img), large=False, second=False)
        matches = [i for i, c in enumerate(candidates) if torch.equal(view, c)]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) >= 3  # the angle is drawn, not fixed


def test_blur_radius_is_dino_range_at_every_crop_size(monkeypatch):
    """Official (DINO utils.GaussianBlur): PIL blur with radius U(0.1, 2.0) whatever the crop size
    (the earlier version scaled it to U(0.23, 4.57) on 512 px crops)."""
    radii: list[float] = []
    real = ImageFilter.GaussianBlur
    monkeypatch.setattr(ImageFilter, "GaussianBlur", lambda radius: radii.append(radius)
                        or real(radius))
    random.seed(0)
    torch.manual_seed(0)
    src = to_pil(_image(64, 64))
    for global_size, local_size in ((512, 224), (64, 32)):
        radii.clear()
        aug = MultiCropAugmentation(global_size, local_size, 4)
        for _ in range(8):
            aug(src)
        assert len(radii) >= 15
        assert 0.1 <= min(radii) and max(radii) <= 2.0, (global_size, min(radii), max(radii))
        assert max(radii) > 1.5 and min(radii) < 0.6  # spread over the whole range
    # the filter applied is PIL's own, at the drawn radius
    blur = MultiCropAugmentation(64, 32, 0).blur_g1
    random.seed(3)
    out = blur(src)
    random.seed(3)
    random.random()
    np.testing.assert_array_equal(np.asarray(out),
                                  np.asarray(src.filter(real(random.uniform(0.1, 2.0)))))


def test_local_crop_rotation_is_continuous_nearest_neighbour():
    """Local crops of 512-path images: angle U(0, 360), nearest-neighbour (torchvision's
    RandomRotation default, as the official code), so every output pixel is an input pixel or
    the black fill; a bilinear rotation would create new colours."""
    torch.manual_seed(0)
    aug = MultiCropAugmentation(32, 16, 1)
    img = _unique_colours(40, 40)
    source = np.append(_codes(img), 0)  # + the black fill
    angles = []
    real_angle = aug.rotate_any.get_params
    aug.rotate_any.get_params = lambda degrees: angles.append(real_angle(degrees)) or angles[-1]
    for _ in range(8):
        out = _as_tensor(aug._prepare(to_pil(img), large=False, global_view=False))
        assert out.shape == img.shape
        pixels = _codes(out)
        assert np.isin(pixels, source).all()
        assert len(np.unique(pixels)) > 0.5 * 40 * 40
    assert len(angles) == 8 and all(0.0 <= a < 360.0 for a in angles)
    assert any(a % 90 > 1e-6 for a in angles)
    # bilinear (what the evaluation uses) does create new colours: the check above can fail
    bilinear = rotate_continuous(img, 33.0)
    assert not np.isin(_codes(bilinear), source).all()


class _Spy:
    def __init__(self, fn, log, name):
        self.fn, self.log, self.name = fn, log, name

    def __call__(self, img):
        out = self.fn(img)
        self.log.append((self.name, img.size, out.size))
        return out


def _spied(aug):
    log = []
    for name in ("rotate_any", "rotate_exact", "large_crop", "global_crop", "local_crop"):
        setattr(aug, name, _Spy(getattr(aug, name), log, name))
    return log


def test_official_1024_path_order():
    """1024-wide images: every crop is rotated continuously, then cropped to 600 px, then to the
    global/local size; 512 px images: exact angles for global crops, continuous for local crops,
    no 600 px crop."""
    torch.manual_seed(0)
    random.seed(0)
    aug = MultiCropAugmentation(64, 32, 2, large_side=1024, large_crop=600)
    log = _spied(aug)
    crops = aug(torch.zeros(3, 1024, 1024, dtype=torch.uint8) + 128)
    assert [tuple(c.shape) for c in crops] == [(3, 64, 64)] * 2 + [(3, 32, 32)] * 2
    expected = []
    for final in ("global_crop", "global_crop", "local_crop", "local_crop"):
        size = 64 if final == "global_crop" else 32
        expected += [("rotate_any", (1024, 1024), (1024, 1024)),
                     ("large_crop", (1024, 1024), (600, 600)),
                     (final, (600, 600), (size, size))]
    assert log == expected
    log.clear()
    aug(torch.zeros(3, 512, 512, dtype=torch.uint8) + 128)
    assert [name for name, _, _ in log] == ["rotate_exact", "global_crop"] * 2 + [
        "rotate_any", "local_crop"] * 2
    log.clear()
    MultiCropAugmentation.__init__(aug, 64, 32, 2, historotate=False)
    log = _spied(aug)
    aug(torch.zeros(3, 1024, 1024, dtype=torch.uint8) + 128)
    assert [name for name, _, _ in log] == ["large_crop", "global_crop"] * 2 + [
        "large_crop", "local_crop"] * 2


def test_large_crop_scale_up_to_seven_falls_back_to_the_whole_image():
    """RandomResizedCrop(600, scale=(0.4, 7.0)): a target area above the image never fits, so
    torchvision retries (10 times) and then takes the whole image. Per attempt, only areas in
    [0.4, 1] of the image can fit, so the fallback (whole image) is common, unlike with
    scale (0.4, 1.0) where it is rare; crops that fit have area fraction >= 0.4 - rounding."""
    torch.manual_seed(0)
    aug = MultiCropAugmentation(64, 32, 0)
    img = to_pil(torch.zeros(3, 1024, 1024, dtype=torch.uint8))
    draws = [aug.large_crop.get_params(img, aug.large_crop.scale, aug.large_crop.ratio)
             for _ in range(400)]
    whole = sum((h, w) == (1024, 1024) for _, _, h, w in draws) / len(draws)
    fractions = [h * w / 1024**2 for _, _, h, w in draws]
    assert 0.15 < whole < 0.6, whole
    assert min(fractions) >= 0.39 and max(fractions) <= 1.0
    small = [aug.global_crop.get_params(img, (0.4, 1.0), aug.large_crop.ratio)
             for _ in range(400)]
    assert sum((h, w) == (1024, 1024) for _, _, h, w in small) / len(small) < 0.05


def test_eval_transform_normalises():
    x = torch.full((2, 3, 8, 8), 255, dtype=torch.uint8)
    y = eval_transform(x, 8)
    torch.testing.assert_close(y[0, :, 0, 0], (1 - torch.tensor([0.485, 0.456, 0.406]))
                               / torch.tensor([0.229, 0.224, 0.225]))


def _official_augmentation():
    folder = os.environ.get("PATHDINO_OFFICIAL_CODE", "")
    if not folder or not (Path(folder) / "PathDino_main_512.py").is_file():
        pytest.skip("set PATHDINO_OFFICIAL_CODE to the official repository (PathDino_main_512.py)")
    sys.modules.setdefault("torchinfo", types.SimpleNamespace(summary=None))  # not needed here
    sys.path.insert(0, folder)
    try:
        spec = importlib.util.spec_from_file_location("official_main",
                                                      Path(folder) / "PathDino_main_512.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(folder)
    return module.DataAugmentationDINO


@pytest.mark.parametrize("side", [512, 1024])
def test_against_the_official_augmentation_when_available(side):
    official = _official_augmentation()((0.4, 1.0), (0.05, 0.4), 8)
    ours = MultiCropAugmentation(512, 224, 8)
    img = to_pil(_image(side, side, seed=side))
    for seed in range(2):
        random.seed(seed)
        torch.manual_seed(seed)
        want = official(img)
        random.seed(seed)
        torch.manual_seed(seed)
        got = ours(img)
        assert len(got) == len(want) == 10
        for a, b in zip(got, want):
            assert torch.equal(a, b)

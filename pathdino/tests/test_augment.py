import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF

from pathdino.augment import (
    MultiCropAugmentation,
    eval_transform,
    inner_crop_size,
    rotate_center_crop,
    rotate_continuous,
    rotate_exact,
)


def _image(h=12, w=12):
    return torch.randint(0, 256, (3, h, w), generator=torch.Generator().manual_seed(0),
                         dtype=torch.uint8)


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
    """With crops covering the whole image and colour ops off, a global view is one of the four
    exact rotations (possibly flipped) of the input: no interpolation artefacts."""
    torch.manual_seed(0)
    aug = MultiCropAugmentation(24, 8, 0, global_scale=(1.0, 1.0))
    aug.global_crop.ratio = (1.0, 1.0)
    aug.flip_jitter = lambda x: x
    aug.blur_g1.p = 0.0
    aug.normalize = lambda x: x
    img = _image(24, 24)
    candidates = [rotate_exact(img, a) for a in (90, 180, 270, 360)]
    for _ in range(6):
        view = aug._global(img, second=False)
        assert any(torch.equal(view, c) for c in candidates)


def test_eval_transform_normalises():
    x = torch.full((2, 3, 8, 8), 255, dtype=torch.uint8)
    y = eval_transform(x, 8)
    torch.testing.assert_close(y[0, :, 0, 0], (1 - torch.tensor([0.485, 0.456, 0.406]))
                               / torch.tensor([0.229, 0.224, 0.225]))

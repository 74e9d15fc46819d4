import math

import torch

from gaussian_shell_maps.data import random_labels
from gaussian_shell_maps.model import GSMConfig, GSMGenerator, HumanDiscriminator, head_center

CFG = GSMConfig(num_gaussians=100, z_dim=8, w_dim=8, tex_resolution=8, tex_channels=8,
                channel_base=64, channel_max=8, decoder_hidden=8)


def test_generator_shapes_and_ranges(template, rng):
    gen = GSMGenerator(CFG, template)
    labels = random_labels(2, rng)
    out = gen(torch.randn(2, 8, generator=rng), labels, 16, perturb=True)
    assert out["image"].shape == (2, 3, 16, 16)
    assert out["image"].min() >= -1 - 1e-5 and out["image"].max() <= 1 + 1e-5
    g = out["gaussians"]
    assert g["means"].shape == (2, 100, 3) and g["quats"].shape == (2, 100, 4)
    assert (g["scales"] <= CFG.max_scaling + 1e-7).all() and (g["scales"] > 0).all()
    assert ((g["opacities"] > 0) & (g["opacities"] < 1)).all()
    torch.testing.assert_close(g["quats"].norm(dim=-1), torch.ones(2, 100))
    assert out["textures"]["color"].shape == (2, 5, 3, 8, 8)
    assert out["joints2d"].shape == (2, 24, 2)


def test_photometric_loss_reaches_every_generator_parameter(template, rng):
    gen = GSMGenerator(CFG, template)
    labels = random_labels(2, rng)
    out = gen(torch.randn(2, 8, generator=rng), labels, 16)
    (out["image"] - torch.rand(2, 3, 16, 16, generator=rng)).square().mean().backward()
    for name, p in gen.named_parameters():
        if name.startswith("mapping") and "w_avg" in name:
            continue
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert gen.mapping.layers[0].weight.grad.abs().sum() > 0
    assert gen.decoders["color"].layer2.weight.grad.abs().sum() > 0


def test_gaussians_follow_the_pose(template, rng):
    gen = GSMGenerator(CFG, template)
    labels = random_labels(2, rng)
    labels[1, 28:97] = labels[0, 28:97] * 0  # second sample in the rest pose
    labels[1, :25] = labels[0, :25]
    z = torch.randn(1, 8, generator=rng).expand(2, -1)
    out = gen(z, labels, 16, noise=False)
    g = out["gaussians"]
    # same identity: attributes identical, only positions change with the pose
    torch.testing.assert_close(g["colors"][0], g["colors"][1])
    assert (g["means"][0] - g["means"][1]).norm(dim=-1).max() > 0.05


def test_discriminator_with_face_branch(template, rng):
    disc = HumanDiscriminator(16, 64, 8, 2, face_resolution=8)
    img = torch.rand(4, 3, 16, 16, generator=rng) * 2 - 1
    boxes = torch.tensor([[4.0, 4.0, 12.0, 12.0]]).expand(4, -1)
    out = disc(img, random_labels(4, rng), face_box=boxes)
    assert out["main"].shape == (4, 1) and out["face"].shape == (4, 1)
    assert head_center(torch.zeros(4, 24, 2)).shape == (4, 2)


# ------------------------------------------------------------------------------ issue 25 items
def test_uv_mask_rasterisation_closed_form():
    from gaussian_shell_maps.model import rasterize_uv_mask

    # the UV triangle (0,0) (1,0) (0,1) is the image's lower-left half (row 0 is v = 1): its
    # hypotenuse is the main diagonal, so it overlaps the texels with row >= col, R (R + 1) / 2
    # of them at any resolution (the ones that only touch it at a corner are excluded)
    vt = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    ft = torch.tensor([[0, 1, 2]])
    for res in (4, 8, 33):
        mask = rasterize_uv_mask(vt, ft, res)
        rows, cols = torch.meshgrid(torch.arange(res), torch.arange(res), indexing="ij")
        assert torch.equal(mask.bool(), rows >= cols), res
    # a sliver thinner than a texel still marks every texel it crosses (point sampling would not)
    thin = rasterize_uv_mask(torch.tensor([[0.0, 0.5], [1.0, 0.5], [1.0, 0.501]]), ft, 16)
    assert thin.sum() >= 16 and thin[7:9].sum() == thin.sum()


def test_uv_mask_png_is_read_and_resampled(tmp_path):
    from PIL import Image

    from gaussian_shell_maps.model import load_uv_mask

    img = torch.zeros(64, 64)
    img[:, :32] = 255
    Image.fromarray(img.numpy().astype("uint8")).save(tmp_path / "mask_uv.png")
    mask = load_uv_mask(tmp_path / "mask_uv.png", 8)
    assert mask.shape == (8, 8) and mask[:, :4].min() == 1 and mask[:, 4:].max() == 0


def test_head_boxes_closed_form():
    from gaussian_shell_maps.model import head_boxes

    pts = torch.tensor([[[10.0, 20.0], [14.0, 30.0], [12.0, 25.0]]])  # box 4 x 10
    # squared on the longer side (10) around the centre (12, 25), grown by 0.5 x 10 per side
    torch.testing.assert_close(head_boxes(pts, 64, 64), torch.tensor([[2.0, 15.0, 22.0, 35.0]]))
    # clamped to the image, then truncated to integer pixels (official `.long()`)
    torch.testing.assert_close(head_boxes(pts - 9.5, 64, 64), torch.tensor([[0.0, 5.0, 12.0, 25.0]]))


def test_crop_boxes_reads_the_box_region():
    from gaussian_shell_maps.model import crop_boxes

    img = torch.ones(2, 3, 32, 32)
    img[:, :, :, :16] = -1  # left half dark
    crops = crop_boxes(img, torch.tensor([[0.0, 0.0, 15.0, 31.0], [17.0, 4.0, 31.0, 20.0]]), 8)
    assert crops.shape == (2, 3, 8, 8)
    torch.testing.assert_close(crops[0], torch.full((3, 8, 8), -1.0))
    torch.testing.assert_close(crops[1], torch.full((3, 8, 8), 1.0))


def test_generator_face_box_follows_the_head(template, rng):
    gen = GSMGenerator(CFG, template)
    labels = random_labels(3, rng)
    out = gen(torch.randn(3, 8, generator=rng), labels, 64)
    head = out["joints2d"][:, 15]  # the head joint lies inside its crop box
    box = out["head_box"]
    assert ((box[:, :2] <= head) & (head <= box[:, 2:])).all(), (box, head)
    torch.testing.assert_close(gen.head_box(labels, 64), box)


def test_ema_rampup_starts_as_a_copy_and_reaches_the_half_life():
    from gaussian_shell_maps.config import parse_config
    from gaussian_shell_maps.engine import ema_beta

    cfg = parse_config(["--batch_size", "32", "--ema_half_life_imgs", "10000"])
    assert cfg.ema_rampup == 0.05
    assert ema_beta(cfg, 32, 0) == 0.0  # step 0: G_ema = G
    assert math.isclose(ema_beta(cfg, 32, 32 * 10), 0.5 ** (32 / 16))  # 320 images x 0.05
    assert math.isclose(ema_beta(cfg, 32, 10**7), 0.5 ** (32 / 10000))  # capped by ema_kimg
    off = parse_config(["--ema_rampup", "0"])
    assert math.isclose(ema_beta(off, 32, 0), 0.5 ** (32 / off.ema_half_life_imgs))


def test_sites_are_fixed_by_default_as_in_the_released_code(template, rng):
    from tests_paths import PAPER

    from gaussian_shell_maps.config import parse_config

    assert parse_config([]).perturb_points is False
    assert parse_config(["--config", PAPER]).perturb_points is False
    gen = GSMGenerator(CFG, template)
    labels = random_labels(1, rng)
    z = torch.randn(1, 8, generator=rng)
    a = gen(z, labels, 16, noise=False)["gaussians"]["means"]
    b = gen(z, labels, 16, noise=False)["gaussians"]["means"]
    c = gen(z, labels, 16, noise=False, perturb=True)["gaussians"]["means"]
    assert torch.equal(a, b) and not torch.equal(a, c)

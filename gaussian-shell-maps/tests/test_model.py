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

"""The released network (`arch_skips = "released"`) against what the official code builds.

Facts pinned here were read from ruyianry/rep_hierarchy_rl@d478bac (hvae-oodd): the parameter
count of the FashionMNIST preset (5,340,258, counted by building the official model), which
skip inputs are used, the block layout, and the official state-dict layout.
"""

import os

import pytest
import torch
from torch import nn

from conftest import TINY_ARCH
from rl_hvae.model import HierarchicalVAE, HVAEArch
from rl_hvae.released import ReleasedHVAE, WNConv, WNDense, convert_official_state_dict

OFFICIAL_PARAMS = 5_340_258  # the official FashionMNIST model, all parameters
OFFICIAL_UNUSED = 31_360  # its top-level q-projection (8 -> 64*7*7 dense), read by nothing
# Paper geometry (28x28, 3 blocks per stage, strides 2, 2, 1, 1, 1) at 8 channels: cheap, and
# with the same pattern of live and dead skips as the 64-channel preset.
NARROW = HVAEArch(image_size=28, channels=8)


def _released(arch: HVAEArch, batch: int = 8) -> tuple[ReleasedHVAE, torch.Tensor]:
    torch.manual_seed(0)
    model = ReleasedHVAE(arch)
    x = torch.rand(batch, arch.in_channels, arch.image_size, arch.image_size).bernoulli()
    model.data_init(x)
    return model, x


def test_parameter_count_matches_the_official_fashion_mnist_model():
    model = ReleasedHVAE(HVAEArch())  # the paper preset's architecture
    n = sum(p.numel() for p in model.parameters())
    assert n == OFFICIAL_PARAMS - OFFICIAL_UNUSED
    assert abs(n / OFFICIAL_PARAMS - 1) < 0.01


@pytest.mark.parametrize("skips, depends", [("released", [False] * 4), ("intended", [True] * 4)])
def test_which_posteriors_depend_on_their_skip_input(skips, depends):
    """Replace the skip input h_{l-1} of level l = 2..5 with noise: the released posterior must
    not change (the skip is dropped), the intended one must. Level 1 has no skip input."""
    torch.manual_seed(0)
    if skips == "released":
        model, x = _released(NARROW)
    else:
        model, x = HierarchicalVAE(NARROW), torch.rand(8, 1, 28, 28).bernoulli()
    model.eval()
    with torch.no_grad():
        u = model.stem(2 * x - 1) if skips == "intended" else x
        post, h = model.infer_level(0, u, None)
        got = []
        for level in range(1, model.n_levels):
            u = model.q_layers[level - 1].project(post.mean) if skips == "intended" \
                else model.q_proj[level - 1](post.mean)
            a, h_next = model.infer_level(level, u, h)
            b, _ = model.infer_level(level, u, torch.randn_like(h) * 3)
            got.append(not torch.equal(a.mean, b.mean) or not torch.equal(a.std, b.std))
            post, h = a, h_next
    assert got == depends


def test_released_generative_skips_live_only_in_the_upsampling_stages():
    """Block j of generative stage l reads block j of the stage above; in the released network
    only blocks 1, 2 of levels 1 and 2 (whose first block upsamples) use it: 4 of 12 inputs."""
    model, _ = _released(NARROW)
    live = [[blk.aux_op is not None for blk in model.p_stages[lvl].blocks] for lvl in range(4)]
    assert live == [[False, True, True], [False, True, True], [False] * 3, [False] * 3]
    assert not model.p_stages[4].use_skips  # the top stage has no skip input
    with torch.no_grad():
        for lvl, expect in enumerate([True, True, False, False]):
            shape = model.p_proj[lvl].out_shape
            d_in = torch.randn(2, *shape)
            skip_shape = model.q_stages[lvl].out_shape
            skips = [torch.randn(2, *skip_shape) for _ in range(3)]
            out_a, _ = model.p_stages[lvl](d_in, skips)
            out_b, _ = model.p_stages[lvl](d_in, [torch.randn_like(s) for s in skips])
            assert (not torch.equal(out_a, out_b)) == expect, lvl


def test_released_inference_skips_are_all_dropped():
    model, _ = _released(NARROW)
    for lvl, stage in enumerate(model.q_stages):
        assert stage.use_skips == (lvl > 0)
        assert all(blk.aux_op is None for blk in stage.blocks), lvl


def test_block_layout_of_the_released_network():
    model, _ = _released(NARROW)
    acts = {type(m) for m in model.modules() if type(m).__module__ == nn.ReLU.__module__}
    assert acts == {nn.ReLU}  # the script's activation, everywhere
    down = model.q_stages[0].blocks[-1]  # strided: parameter-free average-pool shortcut
    assert down.residual and isinstance(down.pool, nn.AvgPool2d)
    assert not any(p.numel() for p in down.pool.parameters())
    for lvl in (0, 1):  # upsampling blocks: no shortcut at all
        assert not model.p_stages[lvl].blocks[0].residual
    assert not model.q_stages[0].blocks[0].residual  # the bottom stage's first block
    assert model.q_proj[0].net is None and model.p_proj[0].net is None  # identity for z1
    for layers in (model.q_layers, model.p_layers):
        assert layers[0].net.conv.kernel_size == (3, 3) and isinstance(layers[0].act, nn.ReLU)
        assert isinstance(layers[1].net, WNDense)
    assert isinstance(model.head_act, nn.ReLU) and model.head.conv.kernel_size == (3, 3)


def test_same_padding_and_transposed_crop_follow_tensorflow_convention():
    """k=5, s=2 on 28: pad 1 before, 2 after; its transposed conv crops 1 and 2 of 31 -> 28."""
    torch.manual_seed(0)
    conv = WNConv((1, 28, 28), 2, 5, stride=2)
    x = torch.randn(3, 1, 28, 28)
    conv(x)  # data-dependent init
    w = conv.conv.weight
    ref = nn.functional.conv2d(nn.functional.pad(x, (1, 2, 1, 2)), w, conv.conv.bias, stride=2)
    torch.testing.assert_close(conv(x), ref)
    up = WNConv((2, 14, 14), 3, 5, stride=2, transposed=True)
    y = torch.randn(3, 2, 14, 14)
    up(y)
    full = nn.functional.conv_transpose2d(y, up.conv.weight, up.conv.bias, stride=2)  # 31 x 31
    torch.testing.assert_close(up(y), full[..., 1:29, 1:29])


def test_data_dependent_init_standardises_each_output_unit():
    """Salimans & Kingma (2016): right after the init, every unit of a layer has mean 0 and
    variance 1 over the batch it was initialised on; later calls do not re-initialise."""
    torch.manual_seed(0)
    model = ReleasedHVAE(TINY_ARCH)
    outs = {}
    layers = [m for m in model.modules() if isinstance(m, (WNConv, WNDense))
              and not getattr(m, "transposed", False)]
    hooks = [m.register_forward_hook(lambda m, i, o: outs.setdefault(m, o)) for m in layers]
    model.data_init(torch.rand(32, 1, 8, 8).bernoulli())
    for h in hooks:
        h.remove()
    assert len(outs) == len(layers) > 20
    for layer, out in outs.items():
        dims = [0] if out.dim() == 2 else [0, 2, 3]
        torch.testing.assert_close(out.mean(dims), torch.zeros(out.shape[1]), atol=1e-4, rtol=0)
        torch.testing.assert_close(out.var(dims), torch.ones(out.shape[1]), atol=1e-3, rtol=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model(torch.rand(4, 1, 8, 8).bernoulli())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    fresh = ReleasedHVAE(TINY_ARCH)
    fresh.load_state_dict(before)  # initialised flags travel with the weights
    fresh(torch.rand(4, 1, 8, 8).bernoulli())
    assert all(torch.equal(before[k], v) for k, v in fresh.state_dict().items())


def test_softplus_scale_gives_sigma_one_at_zero():
    model, _ = _released(TINY_ARCH)
    layer = model.q_layers[1]
    with torch.no_grad():
        layer.net.linear.parametrizations.weight.original0.zero_()
        layer.net.linear.bias.zero_()
    q = layer(torch.randn(3, *model.q_stages[1].out_shape))
    torch.testing.assert_close(q.std, torch.ones_like(q.std))
    torch.testing.assert_close(q.mean, torch.zeros_like(q.mean))


def _official_names(model: ReleasedHVAE) -> dict[str, str]:
    """Our key -> the official key, written from the official module tree (hvae-oodd VaeStage,
    DeterministicModules, NormedSameConv2d / NormedDense with torch.nn.utils.weight_norm)."""
    leaves = {"parametrizations.weight.original0": "weight_g",
              "parametrizations.weight.original1": "weight_v", "bias": "bias",
              "initialized": "initialized"}
    names = {}
    for key in model.state_dict():
        ours_leaf = next(k for k in leaves if key.endswith("." + k))
        stem, inner = key[: -len(ours_leaf) - 1], ""
        for child in ("conv", "linear"):
            if stem.endswith("." + child):
                stem, inner = stem[: -len(child) - 1], child + "."
        p = stem.split(".")
        if p[0] in ("q_stages", "p_stages"):  # q_stages.l.blocks.j.conv1 -> layers.j.conv1
            path = "q_deterministic" if p[0] == "q_stages" else "p_deterministic"
            base = f"stages.{p[1]}.{path}.layers.{p[3]}.{p[4]}"
        elif p[0] in ("q_layers", "p_layers"):
            base = f"stages.{p[1]}.stochastic.in_transform_{p[0][0]}"
        elif p[0] in ("q_proj", "p_proj"):
            base = f"stages.{p[1]}.{p[0][0]}_projection.transform"
        else:
            assert p == ["head"], key
            base = "likelihood.parameter_net"
        names[key] = f"{base}.{inner}{leaves[ours_leaf]}"
    return names


def test_official_state_dict_layout_converts_and_loads_strictly():
    """An official-layout state dict (built here from the official naming rules, with the
    constants and the unused top projection it also holds) converts back to ours exactly."""
    model, _ = _released(HVAEArch(image_size=28, channels=8))
    ours = model.state_dict()
    official = {_official_names(model)[k]: v for k, v in ours.items()}
    for level in range(5):
        official[f"stages.{level}.stochastic.std_activation_inverse.beta"] = torch.ones(1)
        official[f"stages.{level}.stochastic.std_activation_inverse.threshold"] = torch.ones(1)
    official["stages.4.stochastic.prior_logits"] = torch.zeros(16)
    official["stages.4.q_projection.transform.linear.weight_v"] = torch.zeros(1)
    assert "stages.0.p_deterministic.layers.1.aux_op.conv.weight_g" in official
    assert "stages.1.q_deterministic.layers.0.conv1.conv.weight_v" in official
    converted = convert_official_state_dict(official, n_levels=5)
    assert converted.keys() == ours.keys()
    assert all(torch.equal(converted[k], v) for k, v in ours.items())
    fresh = ReleasedHVAE(HVAEArch(image_size=28, channels=8))
    fresh.load_state_dict(converted, strict=True)
    with pytest.raises(KeyError, match="no counterpart"):
        convert_official_state_dict({"stages.0.something.else": torch.zeros(1)}, 5)


@pytest.mark.skipif(not os.environ.get("RL_HVAE_OFFICIAL_STATE_DICT"),
                    reason="set RL_HVAE_OFFICIAL_STATE_DICT to an official model_state_dict.pt")
def test_real_official_weights_load():
    sd = torch.load(os.environ["RL_HVAE_OFFICIAL_STATE_DICT"], map_location="cpu",
                    weights_only=True)
    model = ReleasedHVAE(HVAEArch())
    model.load_state_dict(convert_official_state_dict(sd, 5), strict=True)
    logits = model(torch.rand(4, 1, 28, 28).bernoulli()).logits
    assert torch.isfinite(logits).all()

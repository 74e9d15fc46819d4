import torch

from pathdino.engine import build_models, vit_config
from pathdino.model import (
    DINOHead,
    MultiCropNet,
    PathDinoViT,
    ViTConfig,
    count_parameters,
    ema_update,
)


def test_paper_size_parameter_count():
    n = count_parameters(PathDinoViT(ViTConfig()))  # 512 px, patch 16, dim 384, depth 5
    assert abs(n - 9.0e6) / 9.0e6 < 0.10, n


def test_forward_shapes_and_position_interpolation(tiny_cfg):
    vit = PathDinoViT(vit_config(tiny_cfg))
    x = torch.randn(2, 3, 32, 32)
    assert vit(x).shape == (2, 32)
    assert vit(torch.randn(2, 3, 16, 16)).shape == (2, 32)  # local crops: interpolated pos
    attn = vit.last_self_attention(x)
    assert attn.shape == (2, 2, 17, 17)
    torch.testing.assert_close(attn.sum(-1), torch.ones(2, 2, 17))


def test_attention_paths_agree():
    torch.manual_seed(0)
    vit = PathDinoViT(ViTConfig(32, 8, 32, 2, 2)).eval()
    block = vit.blocks[0]
    x = torch.randn(2, 17, 32)
    fast = block.attn(x)
    slow, _ = block.attn(x, return_attention=True)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)


def test_backward_all_grads_finite(tiny_cfg):
    student, _ = build_models(tiny_cfg)
    crops = [torch.randn(2, 3, 32, 32)] * 2 + [torch.randn(2, 3, 16, 16)] * 2
    out = student(crops)
    assert out.shape == (8, 64)
    out.logsumexp(-1).mean().backward()
    for name, p in student.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_multicrop_groups_equal_separate_forwards():
    torch.manual_seed(0)
    net = MultiCropNet(PathDinoViT(ViTConfig(32, 8, 32, 2, 2)), DINOHead(32, 16, 32, 8)).eval()
    crops = [torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32), torch.randn(2, 3, 16, 16)]
    joint = net(crops)
    separate = torch.cat([net.head(net.backbone(c)) for c in crops])
    torch.testing.assert_close(joint, separate, atol=1e-5, rtol=1e-5)


def test_ema_momentum_one_keeps_teacher_and_zero_copies(tiny_cfg):
    student, teacher = build_models(tiny_cfg)
    with torch.no_grad():
        for p in student.parameters():
            p.add_(1.0)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    ema_update(teacher, student, momentum=1.0)
    for k, v in teacher.state_dict().items():
        assert torch.equal(v, before[k]), k
    ema_update(teacher, student, momentum=0.0)
    for (k, v), p in zip(teacher.named_parameters(), student.parameters()):
        assert torch.equal(v, p), k


def test_weight_normalised_last_layer():
    head = DINOHead(8, 5, 16, 4, norm_last_layer=True)
    assert not head.last_g.requires_grad
    z = torch.nn.functional.normalize(head.mlp(torch.randn(3, 8)), dim=-1)
    # rows of the effective weight have unit norm, so |logits| <= 1
    assert head(torch.randn(3, 8)).abs().max() <= 1.0 + 1e-6
    assert z.shape == (3, 4)


def test_official_checkpoint_names_load_strictly(tmp_path):
    """A state dict in the official naming (DINO ViT: patch_embed.proj, mlp.fc1/fc2, with the
    teacher's `backbone.` prefix and a head) loads into PathDinoViT with strict=True."""
    from pathdino.model import official_to_local_keys

    vit = PathDinoViT(ViTConfig(32, 8, 32, 5, 2))
    official = {}
    for key, value in vit.state_dict().items():
        key = key.replace("patch_embed.", "patch_embed.proj.")
        key = key.replace(".mlp.0.", ".mlp.fc1.").replace(".mlp.2.", ".mlp.fc2.")
        official["backbone." + key] = value.clone()
    official["head.last_layer.weight_g"] = torch.ones(4, 1)
    fresh = PathDinoViT(ViTConfig(32, 8, 32, 5, 2))
    fresh.load_state_dict(official_to_local_keys(official), strict=True)
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(fresh.eval()(x), vit.eval()(x))

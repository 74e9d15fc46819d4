import dataclasses

import torch

from pairdetr.engine import build_model, model_spec
from pairdetr.model import official_to_ours
from pairdetr.official_reference import convert_official_state_dict, official_from_pairdetr


def test_output_keys_shapes_and_aux(tiny_cfg):
    model = build_model(tiny_cfg)
    out = model(torch.randn(2, 3, 64, 80), aux=True)
    q = tiny_cfg.model_num_queries
    assert out["pred_logits"].shape == (2, q, 3)
    assert out["pred_boxes"].shape == (2, q, 8)
    assert len(out["aux_outputs"]) == tiny_cfg.model_dec_layers - 1
    assert ((out["pred_boxes"] > 0) & (out["pred_boxes"] < 1)).all()
    single = build_model(dataclasses.replace(tiny_cfg, method="two_stage"))
    assert single(torch.randn(1, 3, 64, 80))["pred_boxes"].shape == (1, q, 4)


def test_heads_init_follows_official():
    cfg_spec = model_spec(_cfg())
    model = build_model(_cfg())
    last = model.box_head.layers[-1]
    assert torch.all(last.weight == 0)
    assert torch.allclose(last.bias, torch.tensor([0, 0] + [-2.0] * 6))
    torch.testing.assert_close(model.class_head.bias, torch.full((3,), -4.59511985013459))
    assert cfg_spec.box_dim == 8


def _cfg():
    from conftest import TINY

    from pairdetr.config import load_config

    return load_config(TINY)


def test_every_trainable_parameter_gets_a_finite_gradient(tiny_cfg):
    torch.manual_seed(0)
    model = build_model(tiny_cfg)
    # break the zero init of the box head so all layers receive gradient
    torch.nn.init.normal_(model.box_head.layers[-1].weight, std=0.01)
    out = model(torch.randn(1, 3, 64, 80), aux=True)
    loss = out["pred_logits"].sum() + out["pred_boxes"].sum()
    loss = loss + sum(a["pred_boxes"].sum() + a["pred_logits"].sum() for a in out["aux_outputs"])
    loss.backward()
    missing = [n for n, p in model.named_parameters()
               if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())]
    # sampling offsets are zero-initialised in Deformable-DETR, so they still get a gradient
    assert not missing, missing


def test_matches_the_official_model_definition(tiny_cfg):
    """Same weights in the official layout (re-stated) -> identical logits and boxes."""
    torch.manual_seed(0)
    model = build_model(tiny_cfg).eval()
    torch.nn.init.normal_(model.box_head.layers[-1].weight, std=0.05)
    official = official_from_pairdetr(model).eval()
    x = torch.randn(1, 3, 64, 80)
    with torch.no_grad():
        mine, theirs = model(x, aux=False), official(x)
    torch.testing.assert_close(mine["pred_logits"], theirs["logits"])
    # the official layout is [face, body]; ours returns [body, face]
    torch.testing.assert_close(mine["pred_boxes"], official_to_ours(theirs["pred_boxes"]))
    converted = convert_official_state_dict(official.state_dict())
    model.load_state_dict(converted, strict=True)


def test_backbone_weights_load_from_a_torchvision_state_dict(tiny_cfg, tmp_path):
    import pytest
    import torchvision

    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    cfg = dataclasses.replace(tiny_cfg, model_backbone="resnet18",
                              model_backbone_weights=str(path))
    model = build_model(cfg)
    loaded = model.detr.backbone.model.state_dict()
    torch.testing.assert_close(loaded["layer2.0.conv1.weight"],
                               reference.state_dict()["layer2.0.conv1.weight"])
    with pytest.raises(ValueError, match="timm backbone"):
        build_model(dataclasses.replace(tiny_cfg, model_backbone_weights=str(path)))


def test_init_weights_from_the_official_layout(tiny_cfg, tmp_path):
    torch.manual_seed(1)
    source = build_model(tiny_cfg).eval()
    torch.nn.init.normal_(source.box_head.layers[-1].weight, std=0.05)
    path = tmp_path / "official.pth"
    torch.save(official_from_pairdetr(source).state_dict(), path)
    loaded = build_model(dataclasses.replace(tiny_cfg, model_init_weights=str(path))).eval()
    x = torch.randn(1, 3, 64, 80)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)["pred_boxes"], source(x)["pred_boxes"])

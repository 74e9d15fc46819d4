"""The nerfstudio method plugin registers and builds its configs and models (CPU)."""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("nerfstudio")


class _NoLPIPS(torch.nn.Module):
    """Stand-in for torchmetrics' LPIPS, which downloads AlexNet weights at construction."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__()


def test_entry_points_registered():
    from importlib.metadata import entry_points

    names = {e.name for e in entry_points(group="nerfstudio.method_configs")}
    assert {"alpha-nerfacto", "alpha-vanilla-nerf"} <= names


def test_plugin_builds_models_with_recipe(monkeypatch):
    import torchmetrics.image.lpip as tm_lpip
    from nerfstudio.data.scene_box import SceneBox

    from alpha_invariance.ns_plugin import alpha_nerfacto, alpha_vanilla_nerf
    from alpha_invariance.render import init_log_density

    monkeypatch.setattr(tm_lpip, "LearnedPerceptualImagePatchSimilarity", _NoLPIPS)
    assert alpha_nerfacto.config.method_name == "alpha-nerfacto"
    box = SceneBox(aabb=torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]))
    model = alpha_nerfacto.config.pipeline.model.setup(scene_box=box, num_train_data=2)
    from alpha_invariance.render import DEFAULT_TARGET_TRANSMITTANCE as T0

    expected = math.exp(init_log_density(T0, 2 * math.sqrt(3)))
    assert model.config.average_init_density == pytest.approx(expected)
    assert model.field.average_init_density == pytest.approx(expected)
    vanilla = alpha_vanilla_nerf.config.pipeline.model.setup(scene_box=box, num_train_data=2)
    act = vanilla.field_coarse.field_output_density.activation
    assert float(act.offset) == pytest.approx(init_log_density(T0, 2 * math.sqrt(3)))

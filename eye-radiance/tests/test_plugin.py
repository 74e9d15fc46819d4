"""The nerfstudio plugin: the same module as train.py behind nerfstudio's DataManager / Model,
and `ns-train` itself for a few CPU steps on an official-layout capture, offline."""

import dataclasses
import shutil
import sys
from pathlib import Path

import pytest
import torch

from eye_radiance.model import SceneArch

TINY_SCENE = SceneArch(hidden_dim=16, hidden_dim_color=16, num_levels=4, max_res=64,
                       log2_hashmap_size=12, proposal_samples=(16, 8), nerf_samples=8)


def test_plugin_rays_render_as_the_core_model(small_capture):
    from eye_radiance.ns_plugin import EyeDataManagerConfig, EyeRadianceNSModelConfig

    dm = EyeDataManagerConfig(data=small_capture, erode_px=1, train_num_rays_per_batch=64).setup()
    bundle, batch = dm.next_train(0)
    model = EyeRadianceNSModelConfig(scene=TINY_SCENE, texture_num_levels=4).setup(
        scene_box=dm.train_dataset.scene_box, num_train_data=len(dm.train_dataset),
        metadata=dm.train_dataset.metadata).eval()
    cap = dm.train_capture
    eye, u, v = batch["indices"].unbind(-1)
    dirs_cv = torch.stack([(u + 0.5 - cap.width / 2) / cap.fx[eye],
                           (v + 0.5 - cap.height / 2) / cap.fy[eye], torch.ones(len(u))], -1)
    with torch.no_grad():
        ns = model.get_outputs(bundle)
        core = model.eye(dirs_cv, eye)
    hit = ns["hit"][:, 0] > 0
    assert torch.equal(hit, core["hit"]) and hit.float().mean() > 0.8
    torch.testing.assert_close(ns["rgb"][hit], core["rgb"], atol=1e-5, rtol=1e-4)
    groups = model.get_param_groups()
    assert set(groups) == {"fields", "proposal_networks", "camera_opt"}


def test_ns_train_runs_offline_on_cpu(small_capture, tmp_path, monkeypatch):
    """`ns-train eye-radiance-tiny ...` through nerfstudio's own console entry point (tyro CLI
    over every registered method, our plugin found through its entry point, Trainer with eval
    and save), run in this process so that torch/nerfstudio are imported once for the suite."""
    if shutil.which("ns-train", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("ns-train is not installed in this environment")
    from importlib.metadata import entry_points

    from nerfstudio.scripts import train as ns_train

    found = {e.name: e.value for e in entry_points(group="nerfstudio.method_configs")}
    assert found.get("eye-radiance-tiny") == "eye_radiance.ns_plugin:eye_radiance_tiny_method"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [
        "ns-train", "eye-radiance-tiny", "--data", str(small_capture), "--output-dir",
        str(tmp_path / "out"), "--max-num-iterations", "3", "--vis", "tensorboard",
        "--machine.device-type", "cpu", "--steps-per-eval-batch", "2",
        "--steps-per-eval-image", "2", "--steps-per-save", "2",
        "--pipeline.datamanager.erode-px", "1",
        "--pipeline.datamanager.train-num-rays-per-batch", "128"])
    ns_train.entrypoint()
    ckpts = sorted((tmp_path / "out").rglob("step-*.ckpt"))
    assert ckpts and any((tmp_path / "out").rglob("config.yml"))
    state = torch.load(ckpts[-1], map_location="cpu", weights_only=False)["pipeline"]
    depth = state["_model.eye.poses.depth"]
    assert depth.shape == (4,) and depth.abs().sum() > 0  # the poses were refined
    assert not (tmp_path / "hub").exists() or not any((tmp_path / "hub").rglob("*.pth"))
    shutil.rmtree(tmp_path / "out")


def test_paper_method_builds_without_tiny_cuda_nn(small_capture):
    """`ns-train eye-radiance` asks for tcnn; without it (CPU) both the nerfstudio encodings and
    our texture fall back to PyTorch instead of failing."""
    from eye_radiance.ns_plugin import EyeDataManagerConfig, eye_radiance_method

    cfg = eye_radiance_method.config.pipeline.model
    dm = EyeDataManagerConfig(data=small_capture, erode_px=1).setup()
    scene = dataclasses.replace(cfg.scene, log2_hashmap_size=12, num_levels=4)
    model = dataclasses.replace(cfg, scene=scene).setup(
        scene_box=dm.train_dataset.scene_box, num_train_data=len(dm.train_dataset),
        metadata=dm.train_dataset.metadata)
    assert model.eye.texture is not None and model.config.rot_loss_mult == 0.1

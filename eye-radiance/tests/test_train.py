import json
import math
import sys

import pytest
import torch

from conftest import PAPER, ROOT, SMALL, TINY
from eye_radiance.config import load_config, parse_config
from eye_radiance.cornea import apex_positions, axis_angle_error_deg, so3_exp, trace_cornea
from eye_radiance.engine import build_model, build_optimizers, read_capture, train_step
from eye_radiance.model import CorneaPoses
from eye_radiance.scene import iris_texture

sys.path.insert(0, ROOT)
import eval as eval_cli  # noqa: E402
import train as train_cli  # noqa: E402


def _setup(small_capture, *extra):
    cfg = parse_config(["--config", TINY, *SMALL, *extra])
    capture = read_capture(cfg, small_capture)
    model = build_model(cfg, capture)
    return cfg, capture, model


def test_every_parameter_gets_a_finite_gradient(small_capture):
    torch.manual_seed(0)
    cfg, capture, model = _setup(small_capture)
    opts, scheds = build_optimizers(cfg, model)
    for opt in opts.values():
        for group in opt.param_groups:
            group["lr"] = 0.0
    train_step(model, opts, scheds, capture, 0, cfg, torch.Generator().manual_seed(0))
    for name, p in model.named_parameters():
        if name.endswith("embedding_appearance.embedding.weight"):
            continue  # only the batch's eye images get a gradient row; checked as finite below
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    groups = model.param_groups()
    assert sum(p.numel() for p in groups["camera_opt"]) == capture.num_eyes * 6


def test_tiny_overfit_lowers_the_photometric_loss(small_capture):
    torch.manual_seed(0)
    cfg, capture, model = _setup(small_capture, "--batch_rays", "256")
    opts, scheds = build_optimizers(cfg, model)
    gen = torch.Generator().manual_seed(0)
    losses = [train_step(model, opts, scheds, capture, s, cfg, gen)["recon"] for s in range(60)]
    assert sum(losses[-10:]) / 10 < 0.5 * sum(losses[:5]) / 5, (losses[:5], losses[-10:])


def test_official_pose_parametrisation_recovers_a_known_perturbation():
    """Cornea pixels rendered with the true pose (smooth environment + iris); the pose starts
    8 mm too deep, 0.3 mm off sideways and rotated 3 degrees; Adam on the official parameters
    (depth offset along the centre ray, x/y offsets, so(3) about the apex) through the
    intersection, reflection and iris lookup must shrink the apex and axis errors."""

    def env(d):
        return 0.5 + 0.5 * torch.stack([torch.sin(4 * d[:, 0]), torch.cos(3 * d[:, 1]),
                                        torch.sin(2 * d[:, 0] + 3 * d[:, 1])], 1)

    d64 = torch.float64
    fx, width, height = 2000.0, 400.0, 300.0
    centre = torch.tensor([[230.0, 140.0]], dtype=d64)
    depth0 = torch.tensor([400.0], dtype=d64)
    one = torch.ones(1, dtype=d64)

    def apex_rot(depth_m, xy, omega):
        apex = apex_positions(centre, depth0, fx * one, fx * one, width * one, height * one,
                              depth_m, xy)
        return apex, so3_exp(omega)

    true_apex, true_rot = apex_rot(torch.tensor([-0.008], dtype=d64),
                                   torch.tensor([[0.3, -0.2]], dtype=d64),
                                   torch.tensor([[0.04, -0.03, 0.0]], dtype=d64))
    lin = torch.linspace(-4.5, 4.5, 24, dtype=d64)
    yy, xx = torch.meshgrid(lin, lin, indexing="ij")
    dirs = torch.nn.functional.normalize(
        true_apex + torch.stack([xx, yy, torch.zeros_like(xx)], -1).reshape(-1, 3), dim=-1)
    n = dirs.shape[0]

    def render(apex, rot):
        out = trace_cornea(dirs, apex.expand(n, 3), rot.expand(n, 3, 3))
        return env(out["reflected"]) + iris_texture(out["eye_coords"], angular=0.3), out["hit"]

    target, hit_true = render(true_apex, true_rot)
    poses = CorneaPoses(1).double()
    opt = torch.optim.Adam(poses.parameters(), lr=2e-3, eps=1e-8)
    for _ in range(400):
        apex, rot = apex_rot(poses.depth, poses.xy, poses.rotation)
        pred, hit = render(apex, rot)
        loss = ((pred - target) ** 2)[hit & hit_true].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        apex, rot = apex_rot(poses.depth, poses.xy, poses.rotation)
    before = (apex_rot(0 * one, torch.zeros(1, 2, dtype=d64), torch.zeros(1, 3, dtype=d64))[0]
              - true_apex).norm().item()
    after = (apex - true_apex).norm().item()
    axis_before = axis_angle_error_deg(torch.eye(3, dtype=d64), true_rot[0]).item()
    axis_after = axis_angle_error_deg(rot[0], true_rot[0]).item()
    assert after < 0.2 * before, (before, after)
    assert axis_after < 0.3 * axis_before, (axis_before, axis_after)


def test_train_eval_round_trip_and_resume(tmp_path, small_capture):
    args = ["--config", TINY, *SMALL, "--data_root", str(small_capture)]
    res = train_cli.main([*args, "--steps", "3", "--out_dir", str(tmp_path / "a")])
    for name in ("config.json", "metrics.jsonl", "ckpt/last.pt"):
        assert (tmp_path / "a" / name).is_file(), name
    assert res["steps"] == 3 and "pose_axis_err_deg" in res
    out = eval_cli.main(["--ckpt", str(tmp_path / "a/ckpt/last.pt")])
    saved = json.loads((tmp_path / "a/eval/eval.json").read_text())
    assert saved["psnr"] == pytest.approx(out["psnr"]) and math.isfinite(saved["recon_psnr"])
    assert "lpips_random_backbone" in saved and saved["eye_images"] == 4
    for fig in ("scene_views.png", "iris_texture.png", "pose_refinement.png"):
        assert (tmp_path / "a/eval" / fig).stat().st_size > 1000
    # resume: 3 + 2 steps equals 5 uninterrupted steps, bit for bit
    train_cli.main([*args, "--steps", "5", "--out_dir", str(tmp_path / "a")])
    train_cli.main([*args, "--steps", "5", "--out_dir", str(tmp_path / "b")])
    a = torch.load(tmp_path / "a/ckpt/last.pt", weights_only=True)
    b = torch.load(tmp_path / "b/ckpt/last.pt", weights_only=True)
    assert a["step"] == b["step"] == 5
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_presets_parse_and_hold_the_official_values():
    tiny, paper = load_config(TINY), load_config(PAPER)
    assert tiny.steps == 300
    assert (paper.field_num_levels, paper.field_max_res, paper.field_log2_hashmap_size) == (
        16, 2048, 19)
    assert paper.prop_samples == (256, 96) and paper.prop_nerf_samples == 48
    assert (paper.lr_pose, paper.lr_pose_final, paper.pose_weight_decay) == (6e-4, 6e-6, 1e-2)
    assert (paper.rot_loss_mult, paper.rot_angles, paper.data_erode_px) == (0.1, 20, 13)
    assert (paper.render_near, paper.render_far, paper.batch_rays) == (0.05, 1000.0, 4096)

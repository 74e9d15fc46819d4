"""Issue 24: CUDA-only faults shown on the CPU by inspecting devices, and gpu-marked tests that
run a training step, a resume and an evaluation on CUDA."""

import sys

import pytest
import torch

from conftest import ROOT, SMALL, TINY
from eye_radiance import evaluation, runtime
from eye_radiance.config import parse_config
from eye_radiance.engine import build_model, read_capture

sys.path.insert(0, ROOT)
import eval as eval_cli  # noqa: E402
import train as train_cli  # noqa: E402

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def test_pose_errors_build_the_truth_on_the_model_device(small_capture, monkeypatch):
    """The old pose_errors built the ground truth on the CPU and subtracted it from CUDA poses;
    every tensor it creates now names the model's device."""
    cfg = parse_config(["--config", TINY, *SMALL])
    capture = read_capture(cfg, small_capture)
    model = build_model(cfg, capture)
    seen = []
    real = torch.tensor

    def spy(*args, **kwargs):
        seen.append(kwargs.get("device"))
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluation.torch, "tensor", spy)
    from eye_radiance.data import load_ground_truth

    out = evaluation.pose_errors(model, load_ground_truth(small_capture), capture.frame_ids)
    assert out["pose_axis_err_init_deg"] > 0 and seen
    assert all(d is not None and torch.device(d) == model.depth_mm.device for d in seen), seen


def test_checkpoints_carry_the_cuda_rng_states(monkeypatch):
    states = [torch.ByteTensor([1, 2, 3])]
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: states)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.append)
    state = runtime.rng_state()
    assert state["cuda"] is states
    runtime.set_rng_state(state)
    assert restored == [states]


@pytest.mark.gpu
@cuda
def test_train_resume_eval_on_cuda(tmp_path, small_capture):
    args = ["--config", TINY, *SMALL, "--data_root", str(small_capture), "--device", "cuda",
            "--out_dir", str(tmp_path / "a"), "--model_implementation", "torch"]
    train_cli.main([*args, "--steps", "2", "--save_every", "1"])
    res = train_cli.main([*args, "--steps", "3"])
    assert res["steps"] == 3 and res["pose_axis_err_deg"] >= 0
    out = eval_cli.main(["--ckpt", str(tmp_path / "a/ckpt/last.pt")])
    assert out["psnr"] > 0 and out["step"] == 3
    records = (tmp_path / "a/metrics.jsonl").read_text()
    assert "cuda_max_mem_mib" in records
    ckpt = torch.load(tmp_path / "a/ckpt/last.pt", weights_only=True)
    assert "cuda" in ckpt["rng"]


@pytest.mark.gpu
@cuda
def test_cornea_and_prior_on_cuda_match_cpu(small_capture):
    from eye_radiance.losses import rotation_prior_loss

    cfg = parse_config(["--config", TINY, *SMALL])
    capture = read_capture(cfg, small_capture)
    model = build_model(cfg, capture).eval()
    idx = torch.arange(256)
    with torch.no_grad():
        cpu = model.apex_and_rotation(capture.eye[idx])
        gpu = model.cuda().apex_and_rotation(capture.eye[idx].cuda())
    torch.testing.assert_close(gpu[0].cpu(), cpu[0])
    coords = torch.rand(64, 2, device="cuda") - 0.5
    assert torch.isfinite(rotation_prior_loss(model.texture, coords, 20))

"""CUDA paths (issue 24): a training step, a resume and an evaluation on CUDA, CPU-vs-CUDA
agreement of a training step, and the bench's GPU figures. The gpu-marked tests are skipped
without CUDA; the CPU tests check the pieces that do not need it."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
from conftest import FAST, ROOT, TINY

from vl2v_adip.config import parse_config
from vl2v_adip.engine import fit

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _bench():
    spec = importlib.util.spec_from_file_location("bench", ROOT / "bench.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.gpu
@CUDA
def test_train_resume_and_evaluate_on_cuda(tmp_path, capsys):
    from vl2v_adip.engine import evaluate
    from vl2v_adip.runtime import load_checkpoint, read_metrics

    base = ["--config", str(TINY), *FAST, "--device", "cuda", "--swad", "true",
            "--eval_every", "1", "--out_dir", str(tmp_path / "run")]
    fit(parse_config(base + ["--steps", "2"]))
    capsys.readouterr()
    result = fit(parse_config(base + ["--steps", "3"]))
    assert "resumed at step 4 (distill)" in capsys.readouterr().out
    assert result["steps_done"] == 5
    ckpt = load_checkpoint(tmp_path / "run" / "ckpt" / "last.pt")
    assert all(v.device.type == "cpu" for v in ckpt["model"].values())
    mem = [r["cuda_max_mem_mib"] for r in read_metrics(tmp_path / "run") if r["split"] == "train"]
    assert mem and all(m > 0 for m in mem)
    ev = evaluate(tmp_path / "run" / "ckpt" / "last.pt", {"device": "cuda"})
    assert ev["student"]["ood_acc"] == pytest.approx(result["ood_acc"])


@pytest.mark.gpu
@CUDA
def test_resume_on_cuda_matches_uninterrupted_cuda_run(tmp_path):
    from vl2v_adip.runtime import load_checkpoint

    base = ["--config", str(TINY), *FAST, "--device", "cuda", "--method", "kd",
            "--deterministic", "true"]
    fit(parse_config(base + ["--out_dir", str(tmp_path / "full")]))
    fit(parse_config(base + ["--out_dir", str(tmp_path / "part"), "--steps", "1"]))
    fit(parse_config(base + ["--out_dir", str(tmp_path / "part")]))
    a = load_checkpoint(tmp_path / "full" / "ckpt" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "part" / "ckpt" / "last.pt")["model"]
    for k in a:  # cuDNN kernels may differ in the last bits between processes
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)


@pytest.mark.gpu
@CUDA
@pytest.mark.parametrize("method,stage", [("adip", "distill"), ("adip", "align"), ("kd", "train")])
def test_training_step_cpu_matches_cuda(method, stage):
    from vl2v_adip.data import SYNTH_CLASSES
    from vl2v_adip.engine import make_optimizer, train_step
    from vl2v_adip.model import SmallCNN, Student
    from vl2v_adip.teacher import BlackBoxTeacher, build_stand_in

    cfg = parse_config(["--method", method, "--lr", "1e-3"])
    losses, params = {}, {}
    x = torch.rand(12, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    y = torch.arange(12) % 6
    for device in ("cpu", "cuda"):
        torch.manual_seed(0)
        teacher = build_stand_in(list(SYNTH_CLASSES), [], 8, 16).to(device).eval()
        oracle = BlackBoxTeacher(teacher)
        emb = oracle.class_embeddings(list(SYNTH_CLASSES))
        head = "text" if method == "adip" else "linear"
        model = Student(SmallCNN(8), head, 6, emb, oracle.scale()).to(device)
        opt = make_optimizer(cfg, model, stage)
        losses[device] = [train_step(cfg, model, opt, oracle, emb, x.to(device), y.to(device),
                                     stage, np.random.default_rng(0))["loss"] for _ in range(3)]
        params[device] = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    np.testing.assert_allclose(losses["cpu"], losses["cuda"], rtol=1e-4, atol=1e-5)
    for k, v in params["cpu"].items():  # float32 kernels differ: tolerance of a few ulp x steps
        torch.testing.assert_close(params["cuda"][k], v, rtol=1e-3, atol=1e-4)


@pytest.mark.gpu
@CUDA
def test_bench_gpu_figures_on_cuda(tmp_path):
    path = tmp_path / "bench.json"
    figures = _bench().main(["--gpu", "--json", str(path)])
    saved = json.loads(path.read_text())
    assert saved["resnet50_distill_step_ms_b96"] == pytest.approx(
        figures["resnet50_distill_step_ms_b96"]) > 0
    assert figures["resnet50_distill_cuda_max_mem_mib"] > 0


# --------------------------------------------------------------------------- CPU-side checks
def test_bench_gpu_without_cuda_says_so(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert _bench().main(["--gpu", "--json", "unused.json"]) == {}
    assert capsys.readouterr().out.strip() == "no CUDA: GPU figures skipped"


def test_bench_gpu_figures_code_path_on_cpu():
    """The GPU figures' code on the CPU, 1 image per domain, small models."""
    figures = _bench().gpu_figures("cpu", per_domain=1, infer_batch=1, iters=1,
                                   students=("resnet18",), tower_layers=1)
    assert figures["resnet18_distill_step_ms_b3"] > 0
    assert figures["resnet18_official_style_step_ms_b3"] > 0
    assert figures["teacher_vitb16_img_per_s_b1"] > 0


def test_cuda_memory_is_logged_only_on_cuda(tiny_argv):
    from vl2v_adip.runtime import read_metrics

    result = fit(parse_config(tiny_argv))
    assert not any("cuda_max_mem_mib" in r for r in read_metrics(result["run_dir"]))


def test_rng_state_round_trip():
    from vl2v_adip.runtime import rng_state, set_rng_state

    state = rng_state()
    a = torch.rand(3)
    set_rng_state(state)
    assert torch.equal(torch.rand(3), a)

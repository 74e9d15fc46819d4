"""CUDA checks (issue 24): a training step, a resume and an evaluation on the GPU; the training
RNG untouched by evaluation; CPU and CUDA forward passes agree; two ranks on one GPU (gloo).
Skipped without CUDA; `pytest -m gpu` runs them on a GPU machine."""

import json
import os
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, SMALL, TINY, TINY_ARCH
from rl_hvae.config import parse_config
from rl_hvae.data import load_digits_split
from rl_hvae.engine import build_model, fit
from rl_hvae.evaluation import evaluate, quick_eval
from rl_hvae.released import ReleasedHVAE
from rl_hvae.runtime import load_checkpoint

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_train_resume_and_evaluate_on_cuda(tmp_path):
    args = ["--config", TINY, *SMALL, "--device", "cuda", "--save_every", "2"]
    fit(parse_config([*args, "--steps", "4", "--out_dir", str(tmp_path / "full")]))
    fit(parse_config([*args, "--steps", "2", "--out_dir", str(tmp_path / "split")]))
    fit(parse_config([*args, "--steps", "4", "--out_dir", str(tmp_path / "split")]))
    full = load_checkpoint(tmp_path / "full/ckpt/last.pt")
    split = load_checkpoint(tmp_path / "split/ckpt/last.pt")
    assert "cuda" in split["rng_ranks"][0]  # the CUDA generator is checkpointed too
    for k, v in full["model"].items():  # the resumed run continues the same latent stream
        torch.testing.assert_close(v, split["model"][k], rtol=1e-4, atol=1e-5)
    records = [json.loads(x) for x in (tmp_path / "full/metrics.jsonl").read_text().splitlines()]
    assert all(r["cuda_max_mem_mib"] > 0 for r in records if r["split"] == "train")
    out = evaluate(tmp_path / "split/ckpt/last.pt", iw_samples=3, max_examples=32,
                   figures=False, device_name="cuda")
    assert 0 <= out["svm_top_released"] <= 1 and out["nll"] > 0


def test_quick_eval_leaves_the_cuda_generator_alone(tiny_cfg):
    device = torch.device("cuda")
    data = load_digits_split("val")
    model = build_model(tiny_cfg, data).to(device)
    model.data_init(data.images[:32].bernoulli().to(device))
    before = torch.cuda.get_rng_state(device)
    quick_eval(model, data, tiny_cfg, device, max_examples=16)
    assert torch.equal(before, torch.cuda.get_rng_state(device))


def test_cpu_and_cuda_forward_agree(digits_batch):
    torch.manual_seed(0)
    model = ReleasedHVAE(TINY_ARCH)
    model.data_init(digits_batch)
    model.eval()
    cpu, _ = model.infer(digits_batch, use_mode=True)
    gpu, _ = model.cuda().infer(digits_batch.cuda(), use_mode=True)
    for a, b in zip(cpu, gpu):
        torch.testing.assert_close(a.mean, b.mean.cpu(), rtol=1e-4, atol=1e-4)  # TF32/cuDNN


def test_two_ranks_on_one_gpu_with_gloo(tmp_path):
    env = {**os.environ, "DIST_BACKEND": "gloo", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           os.path.join(ROOT, "train.py"), "--config", TINY, *SMALL, "--device", "cuda",
           "--steps", "5", "--out_dir", str(tmp_path / "ddp")]
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = load_checkpoint(tmp_path / "ddp/ckpt/last.pt")
    assert ckpt["step"] == 5 and len(ckpt["rng_ranks"]) == 2

"""CUDA: a training step, a resume and an evaluation on the GPU, and the torchrun path with two
processes on one GPU (gloo: NCCL refuses two ranks on one device). Skipped without CUDA."""

import os
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, TEST_ARGS

from facetalk.config import parse_config
from facetalk.engine import evaluate, fit

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_train_resume_and_evaluate_on_cuda(tmp_path):
    args = TEST_ARGS + ["--device", "cuda", "--save_every", "1", "--out_dir", str(tmp_path)]
    fit(parse_config(args + ["--steps", "1"]))
    out = fit(parse_config(args + ["--steps", "2"]))
    assert out["step"] == 2
    res = evaluate(tmp_path / "ckpt" / "last.pt", figures=False, device="cuda")
    assert res["sequences"] >= 1 and res["lve"] == res["lve"]  # finite, not NaN


def test_torchrun_two_processes_on_one_gpu(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", str(ROOT / "train.py"), *TEST_ARGS, "--steps", "2", "--device", "auto",
           "--out_dir", str(tmp_path)]
    env = {**os.environ, "DIST_BACKEND": "gloo", "CUDA_VISIBLE_DEVICES": "0",
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "ckpt" / "last.pt").is_file()

"""CUDA checks (issue 24), skipped without a GPU: train + resume + eval on CUDA, CUDA vs CPU
outputs, and a 2-process torchrun on one GPU (gloo with CUDA tensors: NCCL refuses two ranks
on one device)."""

import dataclasses
import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, TINY

from pairdetr import engine, runtime

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_train_resume_eval_on_cuda(tiny_cfg, tmp_path):
    cfg = dataclasses.replace(tiny_cfg, device="cuda", steps=2, save_every=1, model_dropout=0.1,
                              out_dir=str(tmp_path / "run"))
    first = engine.fit(cfg)
    assert first["step"] == 2
    ckpt = runtime.load_checkpoint(tmp_path / "run/ckpt/last.pt")
    assert ckpt["cuda_rng"] is not None  # dropout noise comes from the CUDA generator
    resumed = engine.fit(dataclasses.replace(cfg, steps=3))
    assert resumed["step"] == 3
    full = engine.fit(dataclasses.replace(cfg, steps=3, out_dir=str(tmp_path / "full")))
    a = runtime.load_checkpoint(tmp_path / "run/ckpt/last.pt")["model"]
    b = runtime.load_checkpoint(tmp_path / "full/ckpt/last.pt")["model"]
    for key in b:  # resume == uninterrupted run, up to non-deterministic CUDA kernels
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
    records = runtime.read_metrics(tmp_path / "run")
    assert any("cuda_max_mem_mib" in r and r["cuda_max_mem_mib"] > 0 for r in records)
    scores = engine.evaluate_checkpoint(tmp_path / "run/ckpt/last.pt", {"device": "cuda"})
    assert {"body_AP", "mMR_Reasonable", "corrected/mMR_All"} <= set(scores)
    assert full["step"] == 3


def test_cuda_matches_cpu(tiny_cfg):
    torch.manual_seed(0)
    model = engine.build_model(tiny_cfg).eval()
    torch.nn.init.normal_(model.box_head.layers[-1].weight, std=0.05)
    x = torch.randn(1, 3, 64, 80)
    with torch.no_grad():
        cpu = model(x, aux=False)
        gpu = model.to("cuda")(x.to("cuda"), aux=False)
    # TF32 / kernel differences: loose tolerance
    torch.testing.assert_close(gpu["pred_boxes"].cpu(), cpu["pred_boxes"], rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(gpu["pred_logits"].cpu(), cpu["pred_logits"], rtol=1e-3, atol=1e-3)


def test_torchrun_two_ranks_on_one_gpu(tmp_path):
    env = {**os.environ, "DIST_BACKEND": "gloo", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "train.py", "--config", str(TINY), "--device", "cuda", "--steps", "3",
           "--eval_every", "2", "--data_num_train", "8", "--data_num_val", "4",
           "--out_dir", str(tmp_path / "ddp")]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    val = [json.loads(line) for line in (tmp_path / "ddp/metrics.jsonl").read_text().splitlines()
           if '"val"' in line]
    assert [r["step"] for r in val] == [2, 3]

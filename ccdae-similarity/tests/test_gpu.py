"""CUDA: a training step, a resume and an evaluation on the GPU (skipped without CUDA)."""

import dataclasses

import pytest
import torch

from ccdae_similarity import engine

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_train_resume_and_evaluate_on_cuda(tiny_cfg, tmp_path):
    cfg = dataclasses.replace(tiny_cfg, device="cuda", batch_size=4, save_every=1,
                              out_dir=str(tmp_path))
    engine.fit(dataclasses.replace(cfg, steps=1))
    out = engine.fit(dataclasses.replace(cfg, steps=2))
    assert out["step"] == 2 and out["cuda_max_mem_mib"] > 0
    res = engine.evaluate(tmp_path / "ckpt" / "last.pt", {"device": "cuda",
                                                          "eval_modalities": ("image",)})
    assert res["step"] == 2 and "ccdae" in res["image"]


def test_gpu_benchmark_figures(tiny_cfg):
    from ccdae_similarity.benchmark import run_gpu_benchmark

    figures = run_gpu_benchmark(tiny_cfg, n_pairs=2, train_steps=1)
    assert all(v > 0 for v in figures.values()), figures

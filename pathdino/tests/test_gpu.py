"""CUDA checks (issue 24), skipped without CUDA; plus the CPU-visible parts of the same fixes."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
import torch

from pathdino.engine import _init_distributed, fit
from pathdino.runtime import load_checkpoint

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.gpu
@needs_cuda
def test_train_resume_and_evaluate_on_cuda(tiny_cfg, tmp_path):
    """The first step after a resume used to fail on CUDA (Adam moments left on the CPU)."""
    from pathdino.evaluation import evaluate

    cfg = dataclasses.replace(tiny_cfg, device="cuda", out_dir=str(tmp_path / "run"), steps=2)
    fit(cfg)
    result = fit(dataclasses.replace(cfg, steps=3))  # resume: one more step on CUDA
    assert result["step"] == 3 and torch.isfinite(torch.tensor(result["loss"]))
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(r["cuda_max_mem_mib"] > 0 for r in records if r["split"] == "train")
    metrics = evaluate(tmp_path / "run" / "ckpt" / "last.pt")
    assert 0.0 <= metrics["patch"]["synthetic"]["knn_top1_acc"] <= 1.0
    assert load_checkpoint(tmp_path / "run" / "ckpt" / "last.pt")["step"] == 3


@pytest.mark.gpu
@needs_cuda
def test_cuda_embeddings_match_cpu():
    from pathdino.model import PathDinoViT, ViTConfig

    torch.manual_seed(0)
    model = PathDinoViT(ViTConfig()).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        cpu = model(x)
        cuda = model.cuda()(x.cuda()).cpu()
    torch.testing.assert_close(cuda, cpu, atol=1e-3, rtol=1e-3)  # TF32/SDPA kernels on CUDA


@pytest.mark.gpu
@needs_cuda
def test_two_processes_on_one_gpu_with_gloo(tmp_path, monkeypatch):
    """torchrun --nproc_per_node 2 on one GPU: NCCL refuses two ranks per GPU, DIST_BACKEND=gloo
    runs them with CUDA tensors (both ranks on cuda:0)."""
    from test_distributed import _torchrun

    monkeypatch.setenv("DIST_BACKEND", "gloo")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", os.environ.get("CUDA_VISIBLE_DEVICES", "0")[:1])
    proc = _torchrun(tmp_path / "run", "--steps", "2", "--device", "cuda")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert load_checkpoint(tmp_path / "run" / "ckpt" / "last.pt")["step"] == 2


def test_dist_backend_env_and_shared_gpu(monkeypatch):
    """CPU-visible part: DIST_BACKEND picks the process-group backend (default gloo on CPU,
    nccl on CUDA) and ranks beyond the GPU count share GPUs."""
    import torch.distributed as dist

    calls = []
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda backend: calls.append(backend))
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    for key, value in {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DIST_BACKEND", raising=False)
    assert _init_distributed(torch.device("cpu")) == (1, torch.device("cpu"))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: calls.append(str(device)))
    assert _init_distributed(torch.device("cuda")) == (1, torch.device("cuda", 0))
    monkeypatch.setenv("DIST_BACKEND", "gloo")
    _init_distributed(torch.device("cuda"))
    assert calls == ["gloo", "cuda:0", "nccl", "cuda:0", "gloo"]

"""CUDA paths: a training round, a resume and an evaluation on the GPU (marked `gpu`), and the
benchmark's GPU-figure code run on CPU so that it is exercised without a GPU."""

import dataclasses
import importlib.util
import json

import numpy as np
import pytest
import torch
from conftest import ROOT

from clap_vad import engine
from clap_vad.evaluation import evaluate
from clap_vad.model import ScorerConfig, SnippetScorer
from clap_vad.participant import score_snippets
from clap_vad.runtime import load_checkpoint

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("mode", ["collaborative", "local"])
def test_train_resume_eval_on_cuda(tiny_cfg, tmp_path, mode):
    cfg = dataclasses.replace(tiny_cfg, mode=mode, device="cuda", steps=1,
                              out_dir=str(tmp_path / mode))
    engine.fit(cfg)
    out = engine.fit(dataclasses.replace(cfg, steps=2))  # resumes at round 1
    assert load_checkpoint(tmp_path / mode / "ckpt/last.pt")["step"] == 2
    records = [json.loads(x) for x in (tmp_path / mode / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["split"] == "train"]
    assert [r["step"] for r in train] == [1, 2] and all(r["cuda_max_mem_mib"] > 0 for r in train)
    ev = evaluate(str(tmp_path / mode / "ckpt/last.pt"), "cuda")
    assert np.isfinite(ev["auc"]) and ev["auc"] == pytest.approx(out["auc"], abs=1e-4)


@pytest.mark.gpu
@needs_cuda
def test_cuda_scores_match_cpu():
    torch.manual_seed(0)
    model = SnippetScorer(ScorerConfig(2048, 512, 32))
    x = torch.rand(300, 10, 2048)
    cpu = score_snippets(model, x, torch.device("cpu"))
    gpu = score_snippets(model.to("cuda"), x, torch.device("cuda"))
    np.testing.assert_allclose(gpu, cpu, atol=1e-4)  # TF32/reduction order on the GPU


def test_bench_gpu_figure_code_on_cpu():
    spec = importlib.util.spec_from_file_location("bench", ROOT / "bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    figures = bench.gpu_figures("cpu", num_videos=2, snippets=8, repeats=1)
    assert figures["snippets"] == 16 and figures["cuda_train_snippets_per_s"] > 0
    assert figures["cuda_max_mem_mib"] is None

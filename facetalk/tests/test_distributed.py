"""torchrun + DistributedDataParallel: 2 CPU processes (gloo) train exactly what 1 process does."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, TEST_ARGS

from facetalk.config import parse_config
from facetalk.engine import fit
from facetalk.runtime import load_checkpoint


def _torchrun(out, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(ROOT / "train.py"), *TEST_ARGS, "--out_dir", str(out), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=300)


@pytest.mark.parametrize("method", ["diffusion", "regression"])
def test_two_processes_match_one_process_and_log_once(tmp_path, method):
    args = ["--method", method, "--steps", "3", "--save_every", "2"]
    single = fit(parse_config([*TEST_ARGS, *args, "--out_dir", str(tmp_path / "one")]))
    proc = _torchrun(tmp_path / "two", *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a = load_checkpoint(tmp_path / "one" / "ckpt" / "last.pt")
    b = load_checkpoint(tmp_path / "two" / "ckpt" / "last.pt")
    assert a["step"] == b["step"] == 3
    # same global batches and noise, gradients averaged by DDP. The tolerance is 0.2 x lr:
    # attention key biases get a zero gradient up to round-off, and Adam's first steps turn
    # that round-off into updates of up to lr; every other weight agrees to ~1e-6.
    for k in a["model"]:
        torch.testing.assert_close(b["model"][k], a["model"][k], atol=2e-4, rtol=0, msg=k)
    logs = [[json.loads(x) for x in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
            for run in ("one", "two")]
    losses = [[r["loss"] for r in log if r["split"] == "train"] for log in logs]
    assert [r["step"] for r in logs[1] if r["split"] == "train"] == [1, 2, 3]  # rank 0 only
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)  # global-batch loss every step
    assert losses[1][-1] == pytest.approx(single["train_loss"], rel=1e-5)


def test_batch_that_ranks_cannot_split_is_rejected(tmp_path):
    proc = _torchrun(tmp_path / "odd", "--steps", "1", "--batch_size", "3")
    assert proc.returncode != 0 and "must be divisible" in proc.stderr


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs (nccl)")
def test_two_gpus(tmp_path):
    proc = _torchrun(tmp_path / "gpu", "--steps", "2", "--device", "auto")
    assert proc.returncode == 0, proc.stderr[-3000:]

"""torchrun + DistributedDataParallel on CPU (2 gloo processes): train, log once, resume."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, SMALL, TINY
from rl_hvae.runtime import load_checkpoint


def _torchrun(out, *extra: str, script: str = "train.py") -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           os.path.join(ROOT, script), "--config", TINY, *SMALL, "--out_dir", str(out), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=300)


def test_two_processes_train_resume_and_log_once(tmp_path):
    out = tmp_path / "run"
    # RL: one batch = 5 decision steps; then resume to 10. Two launches: a second fit in the
    # same torchrun processes (re-initialising the process group) hung in gloo on this machine.
    for steps in ("5", "10"):
        proc = _torchrun(out, "--method", "rl", "--steps", steps)
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resuming from" in proc.stdout + proc.stderr and "at step 5" in proc.stdout + proc.stderr
    ckpt = load_checkpoint(out / "ckpt" / "last.pt")
    assert ckpt["step"] == 10 and len(ckpt["rng_ranks"]) == 2
    assert not torch.equal(*[r["cpu"] for r in ckpt["rng_ranks"]])  # own latents per rank
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["split"] == "train"]
    assert [r["step"] for r in train] == list(range(10))  # rank 0 alone writes
    assert all(math.isfinite(r["loss"]) for r in train)
    assert [r["rl_t"] for r in train] == [float(s % 5) for s in range(10)]


def test_batch_that_ranks_cannot_split_is_rejected():
    from rl_hvae.distributed import Dist
    from rl_hvae.runtime import ConfigError

    assert Dist(1, 2, torch.device("cpu")).part(32) == slice(16, 32)
    with pytest.raises(ConfigError, match="must be divisible"):
        Dist(0, 2, torch.device("cpu")).part(33)


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs (nccl)")
def test_two_gpus(tmp_path):
    proc = _torchrun(tmp_path / "gpu", "--steps", "2", "--device", "auto")
    assert proc.returncode == 0, proc.stderr[-3000:]

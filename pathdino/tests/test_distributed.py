"""torchrun with 2 CPU processes (gloo): DDP keeps the student and teacher replicas identical."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, TEST_OVERRIDES

from pathdino.runtime import load_checkpoint


def _torchrun(out, *extra: str) -> subprocess.CompletedProcess:
    overrides = [x for k, v in TEST_OVERRIDES.items() for x in (f"--{k}", str(v))]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(ROOT / "train.py"), "--config", str(ROOT / "configs" / "tiny.toml"), *overrides,
           "--out_dir", str(out), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    return subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=300)


def test_two_processes_train_with_identical_replicas(tmp_path):
    out = tmp_path / "run"
    proc = _torchrun(out, "--steps", "3")  # fit raises if the ranks' weights differ at the end
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert load_checkpoint(out / "ckpt" / "last.pt")["step"] == 3
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [0, 1, 2]  # rank 0's log; rank 1 logs under rank1/
    assert (out / "rank1" / "metrics.jsonl").is_file()


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs (nccl)")
def test_two_gpus(tmp_path):
    proc = _torchrun(tmp_path / "gpu", "--steps", "2", "--device", "auto")
    assert proc.returncode == 0, proc.stderr[-3000:]

"""Multi-process training: gradient averaging over ranks (gloo, CPU) and a torchrun round trip."""

import json
import os
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp
from conftest import ROOT, SMALL, TINY

from gaussian_shell_maps import losses as L
from gaussian_shell_maps.distributed import Dist
from gaussian_shell_maps.model import HumanDiscriminator
from gaussian_shell_maps.runtime import load_checkpoint, read_metrics


def _disc_and_batch():
    torch.manual_seed(0)
    disc = HumanDiscriminator(16, 512, 32, mbstd_group=1, face_resolution=0)
    real, fake = torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16)
    return disc, real, fake, torch.randn(4, 107)


def _worker(rank: int, store: str, out: str) -> None:
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"file://{store}", rank=rank,
                                         world_size=2)
    sync = Dist(rank, 2, torch.device("cpu"))
    disc, real, fake, label = _disc_and_batch()
    part = slice(2 * rank, 2 * rank + 2)  # this rank's half of the global batch
    loss = L.d_logistic(disc(real[part], label[part])["main"], disc(fake[part], label[part])["main"])
    loss.backward()
    sync.reduce_grads(disc, loss)
    grads = {n: p.grad for n, p in disc.named_parameters()}
    nan_raised = False
    try:  # rank 1 alone sees a NaN loss: both ranks must stop together
        sync.reduce_grads(disc, loss.detach() * (float("nan") if rank else 1.0))
    except FloatingPointError:
        nan_raised = True
    torch.save({"grads": grads, "nan_raised": nan_raised}, f"{out}/rank{rank}.pt")
    torch.distributed.destroy_process_group()


def test_reduce_grads_equals_full_batch_gradient_and_nan_stops_all_ranks(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    disc, real, fake, label = _disc_and_batch()
    L.d_logistic(disc(real, label)["main"], disc(fake, label)["main"]).backward()
    for rank in (0, 1):
        got = torch.load(tmp_path / f"rank{rank}.pt")
        assert got["nan_raised"], rank
        for name, p in disc.named_parameters():
            torch.testing.assert_close(got["grads"][name], p.grad, atol=1e-6, rtol=1e-4,
                                       msg=f"rank {rank} {name}")


def _torchrun(out, steps: int, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           os.path.join(ROOT, "train.py"), "--config", TINY, *SMALL, "--log_every", "1",
           "--steps", str(steps), "--out_dir", str(out), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=300)


def test_torchrun_two_processes_train_and_resume(tmp_path):
    out = tmp_path / "run"
    for steps in (2, 4):  # 2 steps, then resume to 4
        proc = _torchrun(out, steps)
        assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = load_checkpoint(out / "ckpt" / "last.pt")
    assert ckpt["step"] == 4 and ckpt["world_size"] == 2
    assert len(ckpt["rng_ranks"]) == 2  # per-rank latent streams, restored on resume
    assert not torch.equal(ckpt["rng_ranks"][0]["cpu"], ckpt["rng_ranks"][1]["cpu"])
    records = [r for r in read_metrics(out) if r["split"] == "train"]
    assert [r["step"] for r in records] == [0, 1, 2, 3]  # rank 0 alone logs, once per step
    assert json.loads((out / "config.json").read_text())["batch_size"] == 4


def test_a_global_batch_the_ranks_cannot_split_is_a_user_error(monkeypatch, tmp_path):
    from gaussian_shell_maps import engine
    from gaussian_shell_maps.config import parse_config
    from gaussian_shell_maps.runtime import ConfigError

    monkeypatch.setattr(engine, "init_distributed", lambda device: Dist(0, 2, torch.device("cpu")))
    cfg = parse_config(["--config", TINY, *SMALL, "--batch_size", "3", "--out_dir",
                        str(tmp_path)])
    with pytest.raises(ConfigError, match="must be divisible"):
        engine.fit(cfg)


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs (nccl)")
def test_torchrun_two_gpus(tmp_path):
    proc = _torchrun(tmp_path / "gpu", 2, "--device", "auto")
    assert proc.returncode == 0, proc.stderr[-3000:]

"""Issue 24: the GPU-only faults, shown on CPU where possible, and gpu-marked CUDA checks.

CPU tests inspect the calls (monkeypatched torch.cuda / gsplat entry points) instead of running
CUDA; the gpu-marked tests run a training step, a resume and an evaluation on CUDA."""

import os
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, SMALL, TINY

from gaussian_shell_maps import engine
from gaussian_shell_maps.config import parse_config
from gaussian_shell_maps.distributed import Dist, dist_backend
from gaussian_shell_maps.runtime import ConfigError, load_checkpoint

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def test_checkpoints_capture_and_restore_the_cuda_generator(monkeypatch):
    """Latents, perturbed barycentrics and R1 noise come from the CUDA generator on a GPU: its
    state must be saved and restored with the CPU one."""
    cuda_state = {"value": torch.tensor([7], dtype=torch.uint8)}
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device=None: cuda_state["value"])
    restored = []
    monkeypatch.setattr(torch.cuda, "set_rng_state",
                        lambda state, device=None: restored.append((state.clone(), device)))
    dev = torch.device("cuda", 0)
    state = engine.capture_rng(dev)
    assert set(state) == {"cpu", "cuda"} and torch.equal(state["cuda"], torch.tensor([7]))
    assert set(engine.capture_rng(torch.device("cpu"))) == {"cpu"}
    cpu_before = torch.get_rng_state()
    torch.rand(3)
    engine.restore_rng({"rng_ranks": [state], "rng_cpu": state["cpu"]}, Dist(0, 1, dev), 0)
    assert torch.equal(torch.get_rng_state(), cpu_before)
    assert len(restored) == 1 and torch.equal(restored[0][0], torch.tensor([7]))
    assert restored[0][1] == dev


def test_cuda_peak_memory_is_logged_on_cuda_only(monkeypatch):
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: 3 * 2**20)
    assert engine.memory_metrics(torch.device("cuda", 0)) == {"cuda_max_mem_mib": 3.0}
    assert engine.memory_metrics(torch.device("cpu")) == {}


def test_evaluation_renders_with_gsplat_on_cuda(monkeypatch, template, rng):
    """At paper size (100k Gaussians, 512 px) evaluation must not use the pure-PyTorch
    rasteriser on a GPU: every generator call of the evaluation asks for gsplat."""
    from gaussian_shell_maps import evaluation
    from gaussian_shell_maps.data import random_labels
    from gaussian_shell_maps.model import GSMConfig, GSMGenerator

    gen = GSMGenerator(GSMConfig(num_gaussians=100, z_dim=8, w_dim=8, tex_resolution=8,
                                 tex_channels=8, channel_base=64, channel_max=8,
                                 decoder_hidden=8), template)
    asked = []
    forward = gen.forward

    def spy(*args, backend="torch", **kwargs):
        asked.append(backend)
        return forward(*args, backend="torch", **kwargs)  # render on CPU all the same

    monkeypatch.setattr(gen, "forward", spy)
    monkeypatch.setattr(evaluation, "resolve_backend",
                        lambda name, device: "gsplat" if name == "auto" else name)
    cfg = parse_config(["--config", TINY, *SMALL])
    labels = random_labels(3, rng)
    evaluation.generate(gen, labels, 16, backend=evaluation.eval_backend(cfg, gen))
    evaluation.multiview_consistency(cfg, gen, labels[0], identities=1)
    assert asked and set(asked) == {"gsplat"}, asked


def test_dist_backend_env(monkeypatch):
    monkeypatch.delenv("DIST_BACKEND", raising=False)
    assert dist_backend(True) == "nccl" and dist_backend(False) == "gloo"
    monkeypatch.setenv("DIST_BACKEND", "gloo")
    assert dist_backend(True) == "gloo"  # NCCL refuses two ranks on one GPU
    monkeypatch.setenv("DIST_BACKEND", "nccx")
    with pytest.raises(ConfigError, match="DIST_BACKEND"):
        dist_backend(True)


# ------------------------------------------------------------------------------- on CUDA
CUDA_ARGS = ["--config", TINY, *SMALL, "--device", "cuda", "--eval_keypoint_steps", "2",
             "--save_every", "2", "--perturb_points", "true", "--r1_interval", "2"]


@pytest.mark.gpu
@CUDA
def test_cuda_train_resume_and_eval(tmp_path):
    import eval as eval_script
    import train as train_script

    full = train_script.main([*CUDA_ARGS, "--steps", "4", "--out_dir", str(tmp_path / "full")])
    train_script.main([*CUDA_ARGS, "--steps", "2", "--out_dir", str(tmp_path / "part")])
    resumed = train_script.main([*CUDA_ARGS, "--steps", "4", "--out_dir", str(tmp_path / "part")])
    assert resumed["step"] == full["step"] == 4 and "cuda_max_mem_mib" in full
    a = load_checkpoint(tmp_path / "full" / "ckpt" / "last.pt")
    b = load_checkpoint(tmp_path / "part" / "ckpt" / "last.pt")
    assert "cuda" in a["rng_ranks"][0]
    for name in a["model"]:  # the CUDA generator state made the resumed run the same run
        torch.testing.assert_close(a["model"][name], b["model"][name], msg=name)
    metrics = eval_script.main(["--ckpt", str(tmp_path / "full" / "ckpt" / "last.pt"),
                                "--num_images", "16"])
    assert metrics["render_backend"] == "gsplat" and metrics["device"] == "cuda"
    assert (tmp_path / "full" / "eval" / "metrics.json").is_file()


@pytest.mark.gpu
@CUDA
def test_torchrun_two_processes_on_one_gpu_with_gloo(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", os.path.join(ROOT, "train.py"), *CUDA_ARGS, "--steps", "2",
           "--out_dir", str(tmp_path / "ddp")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DIST_BACKEND": "gloo"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = load_checkpoint(tmp_path / "ddp" / "ckpt" / "last.pt")
    assert ckpt["world_size"] == 2 and all("cuda" in s for s in ckpt["rng_ranks"])


def test_bench_gpu_without_cuda_says_so_and_exits_cleanly(capsys, monkeypatch, tmp_path):
    import bench

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench.main(["--gpu", "--json", str(tmp_path / "b.json")]) == {}
    assert "no CUDA: GPU figures skipped" in capsys.readouterr().out


@pytest.mark.gpu
@CUDA
def test_bench_gpu_figures(tmp_path):
    import json

    import bench

    result = bench.main(["--gpu", "--json", str(tmp_path / "b.json")])
    saved = json.loads((tmp_path / "b.json").read_text())
    assert saved == json.loads(json.dumps(result))
    assert saved["gsplat_cuda_512"]["renders_per_s"] > 0
    assert saved["gsplat_cuda_512"]["num_gaussians"] == 100000

"""nerfstudio's own trainer runs the plugin end to end (issue 22.3), and the offline LPIPS option.

`ns-train alpha-vanilla-nerf` (its console entry point, a subprocess) trains 3 CPU steps on a
capture this test writes in nerfstudio's transforms.json layout, with the LPIPS AlexNet built
without weights (offline). alpha-nerfacto goes through the same trainer, but its
ParallelDataManager spawns a worker that re-imports nerfstudio (minutes on a loaded 2-core CPU):
that run is opt-in with ALPHA_NS_TRAIN_NERFACTO=1.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import urllib.error
from pathlib import Path

import pytest
import torch

pytest.importorskip("nerfstudio")

from alpha_invariance.data import write_nerfstudio_capture
from alpha_invariance.render import DEFAULT_TARGET_TRANSMITTANCE, init_log_density

NS_TRAIN = Path(sys.executable).with_name("ns-train")
COMMON = ["--max-num-iterations", "3", "--steps-per-save", "2", "--machine.device-type", "cpu",
          "--mixed-precision", "False", "--vis", "tensorboard",
          "--pipeline.model.lpips-weights", "random"]
SMALL = {
    "alpha-vanilla-nerf": ["--pipeline.datamanager.train-num-rays-per-batch", "32",
                           "--pipeline.datamanager.eval-num-rays-per-batch", "32",
                           "--pipeline.model.num-coarse-samples", "8",
                           "--pipeline.model.num-importance-samples", "8"],
    "alpha-nerfacto": ["--pipeline.datamanager.train-num-rays-per-batch", "64",
                       "--pipeline.datamanager.eval-num-rays-per-batch", "64",
                       "--pipeline.model.num-levels", "4", "--pipeline.model.max-res", "64",
                       "--pipeline.model.log2-hashmap-size", "12",
                       "--pipeline.model.num-proposal-samples-per-ray", "16", "8",
                       "--pipeline.model.num-nerf-samples-per-ray", "8",
                       "--pipeline.model.implementation", "torch",
                       "--pipeline.model.camera-optimizer.mode", "off"],
}


def _ns_train(method: str, tmp_path: Path) -> tuple[dict, str]:
    cap = write_nerfstudio_capture(tmp_path / "capture", image_size=16, num_views=8)
    cmd = [str(NS_TRAIN), method, "--data", str(cap), "--output-dir", str(tmp_path / "out"),
           *COMMON, *SMALL[method], "nerfstudio-data"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=900, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    ckpts = sorted((tmp_path / "out").rglob("step-*.ckpt"))
    assert ckpts, output[-2000:]
    return torch.load(ckpts[-1], map_location="cpu", weights_only=True), output


@pytest.mark.skipif(not NS_TRAIN.is_file(), reason="ns-train console script not installed")
def test_ns_train_alpha_vanilla_nerf(tmp_path):
    ckpt, output = _ns_train("alpha-vanilla-nerf", tmp_path)
    assert ckpt["step"] == 2
    assert "warning: LPIPS uses a randomly initialised alexnet" in output
    # nerfstudio's dataparser puts the scene in the box [-1, 1]^3: L = its diagonal
    expected = init_log_density(DEFAULT_TARGET_TRANSMITTANCE, 2 * math.sqrt(3))
    offsets = {k: float(v) for k, v in ckpt["pipeline"].items()
               if k.endswith("field_output_density.activation.offset")}
    assert len(offsets) == 2 and all(v == pytest.approx(expected) for v in offsets.values())


@pytest.mark.skipif(os.environ.get("ALPHA_NS_TRAIN_NERFACTO") != "1" or not NS_TRAIN.is_file(),
                    reason="opt-in: ALPHA_NS_TRAIN_NERFACTO=1 (spawns a data worker, slow)")
def test_ns_train_alpha_nerfacto(tmp_path):
    ckpt, output = _ns_train("alpha-nerfacto", tmp_path)
    assert ckpt["step"] == 2
    keys = list(ckpt["pipeline"])
    assert any(k.startswith("_model.field.") for k in keys), keys[:10]
    assert any(k.startswith("_model.proposal_networks.") for k in keys), keys[:10]
    assert "warning: LPIPS uses a randomly initialised alexnet" in output


def test_lpips_backbone_auto_falls_back_offline(monkeypatch, capsys):
    import torchmetrics.functional.image.lpips as tm_lpips

    from alpha_invariance.ns_plugin import lpips_backbone

    calls = []

    def fake(net, pretrained=False):
        calls.append(pretrained)
        if pretrained:
            raise urllib.error.URLError("no network")
        return torch.nn.Sequential()

    monkeypatch.setattr(tm_lpips, "_get_tv_model_features", fake)
    with lpips_backbone("auto"):
        tm_lpips._get_tv_model_features("alexnet", True)
    assert calls == [True, False]
    err = capsys.readouterr().err
    assert err.startswith("warning: LPIPS uses a randomly initialised alexnet (URLError")
    assert tm_lpips._get_tv_model_features is fake  # restored
    with pytest.raises(urllib.error.URLError), lpips_backbone("pretrained"):
        tm_lpips._get_tv_model_features("alexnet", True)
    calls.clear()
    with lpips_backbone("random"):
        tm_lpips._get_tv_model_features("alexnet", True)
    assert calls == [False]

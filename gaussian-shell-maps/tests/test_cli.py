import json

import pytest
import torch
from conftest import SMALL, TINY

import eval as eval_script
import train as train_script
from gaussian_shell_maps.engine import load_run
from gaussian_shell_maps.runtime import save_checkpoint


def test_train_then_eval_round_trip(tmp_path):
    out = tmp_path / "run"
    result = train_script.main(["--config", TINY, *SMALL, "--steps", "3", "--out_dir", str(out)])
    assert result["step"] == 3
    for name in ("config.json", "metrics.jsonl", "ckpt/last.pt"):
        assert (out / name).is_file(), name
    metrics = eval_script.main(["--ckpt", str(out / "ckpt" / "last.pt"), "--num_images", "16"])
    for key in ("fid", "kid", "pck_fake", "multiview_psnr", "renders_per_s_512"):
        assert key in metrics
    saved = json.loads((out / "eval" / "metrics.json").read_text())
    assert saved["feature_extractor"] == "standin-randconv256"
    for fig in ("samples.png", "turntable.png", "repose.png", "sample_0.ply"):
        assert (out / "eval" / fig).is_file()
    # reloading twice gives identical generators
    _, g1, _, _, _ = load_run(out / "ckpt" / "last.pt")
    _, g2, _, _, _ = load_run(out / "ckpt" / "last.pt")
    for (k, a), (_, b) in zip(g1.state_dict().items(), g2.state_dict().items()):
        assert torch.equal(a, b), k


def test_checkpoint_from_other_architecture_is_rejected(tmp_path):
    path = tmp_path / "other.pt"
    save_checkpoint(path, arch="rl-hvae", step=1, config={}, model={})
    with pytest.raises(ValueError, match="not a readable checkpoint of gaussian-shell-maps"):
        load_run(path)

import json

import pytest
import torch

from .conftest import ROOT


def _import(name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_train_then_eval_round_trip(tmp_path):
    train, evaluate = _import("train"), _import("eval")
    small = ["--model_dim", "32", "--unet_channels", "16,32", "--diffusion_steps", "20"]
    out = train.main(["--config", str(ROOT / "configs" / "tiny.toml"), "--steps", "3",
                      "--out_dir", str(tmp_path), *small])
    assert out["step"] == 3
    for f in ("config.json", "metrics.jsonl", "ckpt/last.pt"):
        assert (tmp_path / f).is_file(), f
    res = evaluate.main(["--ckpt", str(tmp_path / "ckpt" / "last.pt"),
                         "--eval_pairs_per_level", "1", "--eval_motivating_pairs", "1",
                         "--eval_triplets", "2", "--ccdae_max_complexity", "6",
                         "--elbo_timesteps", "2", "--ccdae_samples", "1"])
    for kind in ("image", "text"):
        assert "ccdae" in res[kind] and "clip_cosine" in res[kind]
        saved = json.loads((tmp_path / "eval" / f"world_{kind}.json").read_text())
        assert saved["examples"] and (tmp_path / "eval" / f"curves_{kind}.png").is_file()
    assert (tmp_path / "eval" / "correlations.png").is_file()


def test_checkpoint_from_another_architecture_is_rejected(tmp_path):
    from ccdae_similarity import engine
    from ccdae_similarity.runtime import save_checkpoint

    save_checkpoint(tmp_path / "x.pt", arch="something-else", step=0, config={}, model={})
    with pytest.raises(ValueError, match="architecture"):
        engine.load_system_checkpoint(tmp_path / "x.pt")
    save_checkpoint(tmp_path / "y.pt", arch=engine.ARCH, step=0, config={"model_dim": 32},
                    model={"w": torch.zeros(1)})
    with pytest.raises(ValueError, match="do not fit"):
        engine.load_system_checkpoint(tmp_path / "y.pt")

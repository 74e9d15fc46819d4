"""train.py / eval.py round trip and checkpoint errors."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from conftest import ROOT, TEST_OVERRIDES, TINY


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_train_then_eval_round_trip(tmp_path):
    out = tmp_path / "run"
    result = _load("train").main(["--config", str(TINY), *TEST_OVERRIDES, "--steps", "3",
                                  "--out_dir", str(out)])
    assert (out / "config.json").is_file() and (out / "ckpt/last.pt").is_file()
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len([json.loads(x) for x in lines if '"test"' in x]) == 3
    ev = _load("eval").main(["--ckpt", str(out / "ckpt/last.pt")])
    assert ev["auc"] == pytest.approx(result["auc"])
    saved = json.loads((out / "eval/test.json").read_text())
    assert len(saved["per_participant"]) == 3
    assert (out / "eval/roc.png").is_file() and (out / "eval/score_curves.png").is_file()


def test_local_mode_eval_reports_each_model(tmp_path):
    out = tmp_path / "local"
    _load("train").main(["--config", str(TINY), *TEST_OVERRIDES, "--mode", "local",
                         "--steps", "1", "--out_dir", str(out)])
    ev = _load("eval").main(["--ckpt", str(out / "ckpt/last.pt")])
    assert ev["num_models"] == 3 and "global_test_auc" in ev["per_participant"][0]


def test_checkpoint_of_other_architecture_is_rejected(tmp_path):
    out = tmp_path / "run"
    _load("train").main(["--config", str(TINY), *TEST_OVERRIDES, "--mode", "central",
                         "--steps", "1", "--out_dir", str(out)])
    ckpt = torch.load(out / "ckpt/last.pt", weights_only=True)
    ckpt["config"]["model_hidden1"] = 64  # weights no longer match the rebuilt scorer
    torch.save(ckpt, out / "ckpt/other.pt")
    with pytest.raises(ValueError, match="do not match"):
        _load("eval").main(["--ckpt", str(out / "ckpt/other.pt")])
    with pytest.raises(FileNotFoundError):
        _load("eval").main(["--ckpt", str(Path(tmp_path) / "missing.pt")])


def test_unknown_cli_key(tmp_path):
    with pytest.raises(ValueError, match="valid keys"):
        _load("train").main(["--config", str(TINY), "--bogus", "1"])

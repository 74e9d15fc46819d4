import dataclasses
import json

import pytest
import torch
from conftest import TINY

import eval as eval_script
import train as train_script
from pairdetr import engine, runtime
from pairdetr.config import parse_config

SMALL = ["--data_num_train", "4", "--data_num_val", "2", "--model_dim", "32", "--model_ffn_dim",
         "32", "--model_heads", "2", "--model_num_queries", "8", "--model_backbone_width", "8",
         "--data_image_size", "64", "--data_max_size", "80", "--batch_size", "2"]


def test_train_then_eval_round_trip(tmp_path):
    out = tmp_path / "run"
    result = train_script.main(["--config", str(TINY), "--steps", "3", "--out_dir", str(out),
                                *SMALL])
    assert result["step"] == 3
    for name in ("config.json", "metrics.jsonl", "ckpt/last.pt"):
        assert (out / name).is_file(), name
    records = runtime.read_metrics(out)
    assert records[-1]["split"] == "val" and any(r["split"] == "train" for r in records)
    scores = eval_script.main(["--ckpt", str(out / "ckpt/last.pt"), "--eval_max_images", "2"])
    assert {"body_AP", "face_AP", "mMR_Reasonable", "mMR_mean"} <= set(scores)
    saved = json.loads((out / "eval/val.json").read_text())
    assert saved["num_images"] == 2
    assert (out / "eval/pairs.png").is_file()
    # reload: identical outputs
    model, _cfg, _ = engine.load_trained(out / "ckpt/last.pt", torch.device("cpu"))
    again, _, _ = engine.load_trained(out / "ckpt/last.pt", torch.device("cpu"))
    x = torch.randn(1, 3, 64, 80)
    with torch.no_grad():
        assert torch.equal(model.eval()(x)["pred_boxes"], again.eval()(x)["pred_boxes"])


def test_config_precedence_and_unknown_keys(tmp_path):
    cfg = parse_config(["--config", str(TINY), "--steps", "7", "--data_train_scales", "48,64"])
    assert cfg.steps == 7 and cfg.model_dim == 64 and cfg.data_train_scales == (48, 64)
    assert cfg.config_name == "tiny"
    with pytest.raises(ValueError, match="valid keys"):
        parse_config(["--no_such_key", "1"])
    bad = tmp_path / "bad.toml"
    bad.write_text("model_dimm = 3\n")
    with pytest.raises(ValueError, match="model_dim"):
        parse_config(["--config", str(bad)])
    with pytest.raises(ValueError, match="true/false"):
        parse_config(["--aux_loss", "maybe"])
    with pytest.raises(ValueError, match="eval.py cannot set"):
        eval_script.main(["--ckpt", "x.pt", "--model_dim", "3"])


def test_checkpoint_from_other_architecture_is_rejected(tiny_cfg, tmp_path):
    engine.fit(dataclasses.replace(tiny_cfg, steps=1, out_dir=str(tmp_path / "a")))
    with pytest.raises(ValueError, match="different architecture"):
        engine.fit(dataclasses.replace(tiny_cfg, steps=2, model_dim=64,
                                       out_dir=str(tmp_path / "a")))
    ckpt = runtime.load_checkpoint(tmp_path / "a/ckpt/last.pt")
    ckpt["config"]["model_dec_layers"] = 1
    torch.save(ckpt, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="do not fit this architecture"):
        engine.load_trained(tmp_path / "bad.pt", torch.device("cpu"))
    torch.save({"format_version": runtime.FORMAT_VERSION, "kind": "other"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a readable checkpoint of pairdetr.*another program"):
        engine.load_trained(tmp_path / "other.pt", torch.device("cpu"))

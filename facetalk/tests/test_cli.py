import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_then_eval_round_trip(tiny_args, tmp_path):
    result = _script("train").main(tiny_args + ["--steps", "3", "--out_dir", str(tmp_path)])
    assert result["step"] == 3
    for f in ("config.json", "metrics.jsonl", "ckpt/last.pt"):
        assert (tmp_path / f).is_file(), f
    assert json.loads((tmp_path / "config.json").read_text())["steps"] == 3
    out = _script("eval").main(["--ckpt", str(tmp_path / "ckpt/last.pt")])
    for key in ("lve", "fdd", "diversity", "lipsync_corr"):
        assert key in out
    for f in ("test.json", "mouth_vs_audio.png", "frames.png", "sequence.gif"):
        assert (tmp_path / "eval" / f).is_file(), f
    obj = next((tmp_path / "eval").glob("*.obj")).read_text().splitlines()
    assert obj[0].startswith("v ") and obj[-1].startswith("f ")

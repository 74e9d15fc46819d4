import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pathdino.runtime import CheckpointError, UserError, cli

ROOT = Path(__file__).resolve().parents[1]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_then_eval_round_trip(tmp_path):
    from conftest import TEST_OVERRIDES

    out = tmp_path / "run"
    argv = ["--config", str(ROOT / "configs" / "tiny.toml"), "--out_dir", str(out)]
    for key, value in {**TEST_OVERRIDES, "steps": 3}.items():
        argv += [f"--{key}", str(value)]
    result = _load("train").main(argv)
    assert result["step"] == 3
    for name in ("config.json", "metrics.jsonl", "ckpt/last.pt"):
        assert (out / name).is_file(), name
    metrics = _load("eval").main(["--ckpt", str(out / "ckpt" / "last.pt")])
    for key in ("synthetic", "ihc"):
        assert 0.0 <= metrics["patch"][key]["knn_rotated_mv5_acc"] <= 1.0
    assert 1 <= metrics["wsi"]["fps"]["patches_per_slide"] <= 6
    assert metrics["wsi"]["exhaustive"]["patches_per_slide"] > 6
    saved = json.loads((out / "eval" / "metrics.json").read_text())
    assert saved["step"] == 3
    for png in ("attention.png", "fps_selection.png", "rotation_consistency.png"):
        assert (out / "eval" / png).stat().st_size > 1000, png


def test_checkpoint_from_other_architecture_is_rejected(tmp_path, tiny_cfg):
    from pathdino.engine import fit
    from pathdino.evaluation import evaluate
    from pathdino.runtime import load_checkpoint, save_checkpoint

    fit(tiny_cfg)
    ckpt = load_checkpoint(Path(tiny_cfg.out_dir) / "ckpt" / "last.pt")
    bad = dict(ckpt, config={**ckpt["config"], "model_embed_dim": 48})
    bad.pop("format_version")
    save_checkpoint(tmp_path / "x" / "ckpt" / "last.pt", **bad)
    with pytest.raises(CheckpointError, match="do not match"):
        evaluate(tmp_path / "x" / "ckpt" / "last.pt")
    other = dict(ckpt, arch="resnet")
    other.pop("format_version")
    save_checkpoint(tmp_path / "y" / "last.pt", **other)
    with pytest.raises(CheckpointError, match="arch"):
        evaluate(tmp_path / "y" / "last.pt")
    assert torch.is_tensor(ckpt["model"]["backbone.pos_embed"])


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny run (2 steps) whose checkpoint the probes evaluate or damage."""
    from conftest import TEST_OVERRIDES

    out = tmp_path_factory.mktemp("probe") / "run"
    argv = ["--config", str(ROOT / "configs" / "tiny.toml"), "--out_dir", str(out)]
    for key, value in {**TEST_OVERRIDES, "steps": 2}.items():
        argv += [f"--{key}", str(value)]
    _load("train").main(argv)
    return out / "ckpt" / "last.pt"


def test_probe_user_errors_are_one_line_with_exit_2(tmp_path, capsys, trained):
    train, evaluate = _load("train").main, _load("eval").main
    tiny = str(ROOT / "configs" / "tiny.toml")
    cases = {
        "unknown config key": (train, ["--config", tiny, "--no_such_key", "1"]),
        "missing data root": (train, ["--config", tiny, "--data_name", "folder", "--data_root",
                                      "/nonexistent", "--out_dir", str(tmp_path / "r1")]),
        "missing checkpoint": (evaluate, ["--ckpt", "/nonexistent/last.pt"]),
        "text file as checkpoint": (evaluate, ["--ckpt", str(_text(tmp_path))]),
        "truncated checkpoint": (evaluate, ["--ckpt", str(_truncated(trained, tmp_path))]),
        "model key in eval": (evaluate, ["--ckpt", str(trained), "--model_depth", "3"]),
        "unwritable out_dir": (train, ["--config", tiny, "--out_dir",
                                       str(_text(tmp_path) / "sub")]),
    }
    lines = {}
    for name, (main, argv) in cases.items():
        with pytest.raises(SystemExit) as exit_info:
            cli(main, argv)
        assert exit_info.value.code == 2, name
        lines[name] = _one_error_line(capsys)
    assert "no_such_key" in lines["unknown config key"]
    assert "valid keys" in lines["unknown config key"]
    assert "/nonexistent" in lines["missing data root"]
    assert lines["missing checkpoint"].startswith("error: checkpoint not found: /nonexistent")
    for name in ("text file as checkpoint", "truncated checkpoint"):
        assert lines[name].startswith("error: not a readable checkpoint of pathdino: "), name
        assert "weights_only" not in lines[name]
    assert "model_depth" in lines["model key in eval"]
    assert "cannot write" in lines["unwritable out_dir"]
    # --debug: the same error propagates with its traceback
    with pytest.raises(CheckpointError):
        cli(evaluate, ["--ckpt", str(_text(tmp_path)), "--debug"])
    with pytest.raises(UserError, match="no_such_key"):
        cli(train, ["--debug", "--config", tiny, "--no_such_key", "1"])


def test_probe_as_a_real_process(tmp_path):
    """The exit status and stderr of the real script (not the in-process wrapper)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(ROOT / "eval.py"), "--ckpt",
                           str(_text(tmp_path))], capture_output=True, text=True, env=env, check=False,
                          cwd=ROOT, timeout=600)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: not a readable checkpoint of pathdino: ")
    assert "weights_only" not in done.stderr and "Traceback" not in done.stderr


def test_eval_overrides_only_evaluation_keys(tmp_path, trained):
    out = tmp_path / "small"
    result = _load("eval").main(["--ckpt", str(trained), "--out_dir", str(out),
                                 "--data_num_eval_per_class", "3", "--data_num_slides", "4",
                                 "--eval_rotation_patches", "4"])
    assert (out / "metrics.json").is_file()
    assert 1 <= result["wsi"]["fps"]["patches_per_slide"] <= 6
    # 3 patches per class and 4 classes: leave-one-out accuracy is a multiple of 1/12
    acc = result["patch"]["synthetic"]["knn_top1_acc"]
    assert abs(acc * 12 - round(acc * 12)) < 1e-9


def _text(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("my notes, not a checkpoint\n")
    return path


def _truncated(ckpt: Path, tmp_path: Path) -> Path:
    path = tmp_path / "cut.pt"
    data = ckpt.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_extract_user_errors(tmp_path, capsys):
    extract = _load("extract").main
    images = tmp_path / "imgs"
    images.mkdir()
    cases = [["--official", "/nonexistent/PathDino512.pth", "--images", str(images), "--out",
              str(tmp_path / "e.npz")],
             ["--official", str(_text(tmp_path)), "--images", str(images), "--out",
              str(tmp_path / "e.npz")]]
    for argv in cases:
        with pytest.raises(SystemExit) as exit_info:
            cli(extract, argv)
        assert exit_info.value.code == 2
    first, second = _one_error_line_from(capsys.readouterr().err)
    assert first.startswith("error: checkpoint not found: /nonexistent/PathDino512.pth")
    assert second.startswith("error: not a readable checkpoint of pathdino: ")


def _one_error_line_from(err: str) -> list[str]:
    lines = err.strip().splitlines()
    assert all(line.startswith("error: ") for line in lines), lines
    return lines

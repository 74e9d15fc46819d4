"""train.py / eval.py: round trip, and the probe every CLI passes (one-line errors, exit 2)."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, TEST_OVERRIDES, TINY

from clap_vad.runtime import CheckpointError, ConfigError, UserError, cli


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One finished tiny run (central, 2 rounds) whose checkpoint the probes read."""
    out = tmp_path_factory.mktemp("probe") / "run"
    _load("train").main(["--config", str(TINY), *TEST_OVERRIDES, "--mode", "central",
                         "--out_dir", str(out)])
    return out


def test_train_then_eval_round_trip(tmp_path):
    out = tmp_path / "run"
    result = _load("train").main(["--config", str(TINY), *TEST_OVERRIDES, "--steps", "3",
                                  "--out_dir", str(out)])
    assert (out / "config.json").is_file() and (out / "ckpt/last.pt").is_file()
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len([json.loads(x) for x in lines if '"test"' in x]) == 3
    ev = _load("eval").main(["--ckpt", str(out / "ckpt/last.pt")])
    assert ev["auc"] == pytest.approx(result["auc"]) and ev["ap"] == pytest.approx(result["ap"])
    assert "ap_sklearn" in ev
    saved = json.loads((out / "eval/test.json").read_text())
    assert len(saved["per_participant"]) == 3
    assert (out / "eval/roc.png").is_file() and (out / "eval/score_curves.png").is_file()
    train_records = [json.loads(x) for x in lines if '"train"' in x]
    assert all("cuda_max_mem_mib" not in r for r in train_records)  # CPU run: not logged


def test_local_mode_eval_reports_each_model(tmp_path):
    out = tmp_path / "local"
    _load("train").main(["--config", str(TINY), *TEST_OVERRIDES, "--mode", "local",
                         "--steps", "1", "--out_dir", str(out)])
    ev = _load("eval").main(["--ckpt", str(out / "ckpt/last.pt")])
    assert ev["num_models"] == 3 and "global_test_auc" in ev["per_participant"][0]


def test_checkpoint_of_other_architecture_is_rejected(run_dir, tmp_path):
    ckpt = torch.load(run_dir / "ckpt/last.pt", weights_only=True)
    ckpt["config"]["model_hidden1"] = 64  # weights no longer match the rebuilt scorer
    torch.save(ckpt, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="do not match.*model_hidden1=64"):
        _load("eval").main(["--ckpt", str(tmp_path / "other.pt")])


# ----------------------------------------------------------------------------- the probe


def _probe(capsys, script, argv):
    """Run `script.main` through cli(); returns (exit status, stderr lines)."""
    with pytest.raises(SystemExit) as exit_info:
        cli(_load(script).main, argv)
    err = capsys.readouterr().err.strip().splitlines()
    return exit_info.value.code, err


def test_probe_bad_key_and_missing_data_root(capsys):
    code, err = _probe(capsys, "train", ["--config", str(TINY), "--no_such_key", "1"])
    assert code == 2 and len(err) == 1 and err[0].startswith("error: unknown config key")
    code, err = _probe(capsys, "train", ["--config", str(TINY), "--data_root", "/nonexistent"])
    assert code == 2 and len(err) == 1 and "data_root" in err[0]
    code, err = _probe(capsys, "train", ["--config", str(TINY), "--data_name", "ucf",
                                         "--data_root", "/nonexistent"])
    expected = ("error: data_root /nonexistent is not a folder (expected: "
                "<data_root>/list/UCF_Train_ten_crop_i3d_complete_V1.txt, "
                "list/UCF_Test_ten_crop_i3d_complete_V1.txt (one per-video .npy "
                "per line, [T, 10, 2048]), labels/gt-ucf-RTFM.npy or "
                "labels/gt.npy, optional scenes.csv)")
    assert code == 2 and err == [expected]


def test_probe_checkpoints(capsys, run_dir, tmp_path):
    code, err = _probe(capsys, "eval", ["--ckpt", "/nonexistent/last.pt"])
    expected = ("error: checkpoint not found: /nonexistent/last.pt (give "
                "<run>/ckpt/last.pt written by train.py)")
    assert code == 2 and err == [expected]
    notes = tmp_path / "notes.txt"
    notes.write_text("not a checkpoint\n")
    truncated = tmp_path / "cut.pt"
    data = (run_dir / "ckpt/last.pt").read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    for path in (notes, truncated):
        code, err = _probe(capsys, "eval", ["--ckpt", str(path)])
        assert code == 2 and len(err) == 1, err
        assert err[0].startswith(f"error: not a readable checkpoint of clap-vad: {path} (")
        assert "weights_only" not in err[0]
    code, err = _probe(capsys, "eval", ["--ckpt"])
    assert code == 2 and len(err) == 1 and err[0].startswith("error: eval.py: argument --ckpt")


def test_probe_debug_shows_the_traceback(capsys, tmp_path):
    with pytest.raises(ConfigError):
        cli(_load("train").main, ["--config", str(TINY), "--no_such_key", "1", "--debug"])
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    with pytest.raises(UserError, match="not a readable checkpoint"):
        cli(_load("eval").main, ["--ckpt", str(notes), "--debug"])


def test_probe_train_resumes_after_truncation(capsys, tmp_path):
    out = tmp_path / "run"
    args = ["--config", str(TINY), *TEST_OVERRIDES, "--mode", "central", "--out_dir", str(out)]
    cli(_load("train").main, args)
    last = out / "ckpt/last.pt"
    last.write_bytes(last.read_bytes()[:100])
    capsys.readouterr()
    cli(_load("train").main, args)
    assert "resuming from" in capsys.readouterr().err and (out / "ckpt/last.pt").stat().st_size > 100


def test_probe_as_a_real_process(tmp_path):
    """The exit status and stderr of the real script (one case; the rest run in-process)."""
    notes = tmp_path / "notes.txt"
    notes.write_text("not a checkpoint\n")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, str(ROOT / "eval.py"), "--ckpt", str(notes)],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300, check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"error: not a readable checkpoint of clap-vad: {notes} "
                                   "(truncated or not a torch.save file)")

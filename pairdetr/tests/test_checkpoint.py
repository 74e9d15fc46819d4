"""Safe checkpoints (issue 23): refused foreign files, rotation, resume fallback, the CLI probe."""

import dataclasses
import os
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, TINY

import eval as eval_script
import train as train_script
from pairdetr import engine, runtime
from pairdetr.runtime import CheckpointError, UserError, cli

SMALL = ["--data_num_train", "4", "--data_num_val", "2", "--model_dim", "32", "--model_ffn_dim",
         "32", "--model_heads", "2", "--model_num_queries", "8", "--model_backbone_width", "8",
         "--data_image_size", "64", "--data_max_size", "80", "--batch_size", "2",
         "--device", "cpu"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny run with saves at steps 2 and 4: ckpt/last.pt (4) and ckpt/last.prev.pt (2)."""
    out = tmp_path_factory.mktemp("run")
    train_script.main(["--config", str(TINY), "--steps", "4", "--save_every", "2",
                       "--out_dir", str(out), *SMALL])
    return out


def test_rotation_keeps_the_previous_checkpoint(trained):
    last, prev = trained / "ckpt/last.pt", trained / "ckpt/last.prev.pt"
    assert runtime.load_checkpoint(last)["step"] == 4
    assert runtime.load_checkpoint(prev)["step"] == 2
    assert not list((trained / "ckpt").glob("*.tmp"))


def _probe(argv, main, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        cli(main, argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and "weights_only" not in err
    return err


def test_probe_user_errors_are_one_line(tmp_path, trained, capsys):
    _probe(["--config", str(TINY), "--no_such_key", "1"], train_script.main, capsys)
    err = _probe(["--config", str(TINY), "--data_name", "crowdhuman", "--data_root",
                  "/nonexistent"], train_script.main, capsys)
    assert "data_root" in err
    err = _probe(["--ckpt", "/nonexistent/last.pt"], eval_script.main, capsys)
    assert "checkpoint not found" in err
    notes = tmp_path / "notes.txt"
    notes.write_text("these are my notes\n")
    err = _probe(["--ckpt", str(notes)], eval_script.main, capsys)
    assert err.startswith("error: not a readable checkpoint of pairdetr: ")
    data = (trained / "ckpt/last.pt").read_bytes()
    for name, content in {"half.pt": data[:len(data) // 2], "random.pt": os.urandom(512),
                          "empty.pt": b""}.items():
        (tmp_path / name).write_bytes(content)
        err = _probe(["--ckpt", str(tmp_path / name)], eval_script.main, capsys)
        assert err.startswith("error: not a readable checkpoint of pairdetr: "), err
    # a pickle of a class (not weights) is refused without advice to weaken safe loading
    torch.save({"x": torch.nn.Linear(2, 2)}, tmp_path / "module.pt")
    _probe(["--ckpt", str(tmp_path / "module.pt")], eval_script.main, capsys)
    (tmp_path / "out_is_a_file").write_text("")
    err = _probe(["--config", str(TINY), "--out_dir", str(tmp_path / "out_is_a_file" / "x")],
                 train_script.main, capsys)
    assert "run folder" in err


def test_debug_shows_the_traceback():
    with pytest.raises(UserError):
        cli(eval_script.main, ["--ckpt", "/nonexistent/last.pt", "--debug"])


def test_probe_as_a_real_process(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a checkpoint")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "eval.py", "--ckpt", str(notes)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 2
    assert done.stderr.startswith("error: not a readable checkpoint of pairdetr: ")
    assert done.stderr.count("\n") == 1 and "weights_only" not in done.stderr


def test_foreign_and_missing_checkpoints_via_eval_main(tmp_path):
    torch.save({"format_version": runtime.FORMAT_VERSION, "kind": "other", "step": 1, "config": {}, "model": {}},
               tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="another program"):
        eval_script.main(["--ckpt", str(tmp_path / "other.pt")])
    torch.save({"format_version": 99}, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="format_version"):
        eval_script.main(["--ckpt", str(tmp_path / "future.pt")])
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        eval_script.main(["--ckpt", str(tmp_path / "missing.pt")])


def test_truncated_last_resumes_from_previous(trained, tmp_path, tiny_cfg, capsys):
    """Truncate last.pt after a run with saves at 2 and 4, resume, compare with the
    uninterrupted run (the resume of this code is deterministic: parameters equal)."""
    run = tmp_path / "run"
    cfg = dataclasses.replace(tiny_cfg, steps=4, save_every=2, out_dir=str(run))
    engine.fit(dataclasses.replace(cfg, steps=3))  # saves at 2 and 3 (prev = step 2)
    last = run / "ckpt/last.pt"
    data = last.read_bytes()
    last.write_bytes(data[:len(data) // 2])  # a crash in the middle of a copy
    capsys.readouterr()
    result = engine.fit(cfg)
    err = capsys.readouterr().err
    assert "warning: " in err and "last.prev.pt (step 2)" in err and "resuming from" in err
    assert result["step"] == 4
    full = tmp_path / "full"
    engine.fit(dataclasses.replace(cfg, out_dir=str(full)))
    resumed = runtime.load_checkpoint(last)
    reference = runtime.load_checkpoint(full / "ckpt/last.pt")
    assert resumed["step"] == reference["step"] == 4
    for key, value in reference["model"].items():
        assert torch.equal(resumed["model"][key], value), key


def test_both_checkpoints_unreadable_is_an_error(tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "last.pt").write_text("x")
    (ckpt / "last.prev.pt").write_text("y")
    with pytest.raises(CheckpointError, match="last.prev.pt"):
        runtime.resume_checkpoint(ckpt)
    assert runtime.resume_checkpoint(tmp_path / "nothing") is None


def test_other_architecture_names_the_difference(trained, tmp_path):
    with pytest.raises(CheckpointError, match=r"model_dim.*32 in the checkpoint, 64"):
        train_script.main(["--config", str(TINY), "--steps", "5", "--out_dir", str(trained),
                           *SMALL, "--model_dim", "64"])

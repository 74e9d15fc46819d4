"""CLI round trip and the issue-23 probe: user errors as one line + exit 2, safe checkpoint
reading, last.pt / last.prev.pt rotation and resuming after a truncated last.pt."""

import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, SMALL, TINY

import eval as eval_script
import train as train_script
from gaussian_shell_maps.engine import load_run
from gaussian_shell_maps.runtime import (
    CheckpointError,
    UserError,
    cli,
    load_checkpoint,
    resume_checkpoint,
    save_checkpoint,
)

FAST = [*SMALL, "--eval_keypoint_steps", "2"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 3-step tiny run on labels in the official SHHQ layout (camera on -z, flipped body),
    with checkpoints after steps 2 and 3 (last.pt and last.prev.pt)."""
    out = tmp_path_factory.mktemp("run") / "run"
    train_script.main(["--config", TINY, *FAST, "--steps", "3", "--save_every", "2",
                       "--data_label_convention", "official", "--out_dir", str(out)])
    return out


def test_train_then_eval_round_trip(run, tmp_path):
    import numpy as np

    for name in ("config.json", "metrics.jsonl", "ckpt/last.pt", "ckpt/last.prev.pt"):
        assert (run / name).is_file(), name
    assert load_checkpoint(run / "ckpt" / "last.pt")["step"] == 3
    assert load_checkpoint(run / "ckpt" / "last.prev.pt")["step"] == 2
    seq = np.stack([np.full(5, 3.08), np.zeros(5), np.linspace(-0.5, 0.5, 5)], 1)
    np.save(tmp_path / "seq_novel_pose.npy", seq.astype(np.float32))  # official [F, 3] layout
    metrics = eval_script.main(["--ckpt", str(run / "ckpt" / "last.pt"), "--num_images", "16",
                                "--out_dir", str(tmp_path / "eval"), "--pose_seq",
                                str(tmp_path / "seq_novel_pose.npy")])
    for key in ("fid", "kid", "pck_fake", "multiview_psnr", "renders_per_s_512", "part_r2",
                "garment_fd"):
        assert key in metrics
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved["feature_extractor"] == "standin-randconv256"
    for fig in ("samples.png", "turntable.png", "repose.png", "novel_pose.png", "sample_0.ply"):
        assert (tmp_path / "eval" / fig).is_file()
    # reloading twice gives identical generators
    _, g1, _, _, _ = load_run(run / "ckpt" / "last.pt")
    _, g2, _, _, _ = load_run(run / "ckpt" / "last.pt")
    for (k, a), (_, b) in zip(g1.state_dict().items(), g2.state_dict().items()):
        assert torch.equal(a, b), k


def _probe(capsys, main, argv):
    """cli(main, argv) must exit 2 with exactly one `error: ...` line on stderr."""
    with pytest.raises(SystemExit) as exc:
        cli(main, argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_probe_user_errors_are_one_line_with_exit_2(capsys, tmp_path, run):
    line = _probe(capsys, train_script.main, ["--config", TINY, "--no_such_key", "1"])
    assert "no_such_key" in line and "valid keys" in line
    line = _probe(capsys, train_script.main, ["--config", TINY, "--data_name", "shhq",
                                              "--data_root", "/nonexistent", "--out_dir",
                                              str(tmp_path / "r")])
    assert "/nonexistent" in line
    assert not (tmp_path / "r").exists()  # failed before making a run folder
    line = _probe(capsys, eval_script.main, ["--ckpt", "/nonexistent/last.pt"])
    assert line.startswith("error: checkpoint not found: /nonexistent/last.pt")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a checkpoint\n")
    line = _probe(capsys, eval_script.main, ["--ckpt", str(notes)])
    assert line.startswith("error: not a readable checkpoint of gaussian-shell-maps: ")
    assert "weights_only" not in line
    data = (run / "ckpt" / "last.pt").read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    line = _probe(capsys, eval_script.main, ["--ckpt", str(cut)])
    assert "not a readable checkpoint of gaussian-shell-maps" in line and "weights_only" not in line
    with pytest.raises(CheckpointError):  # --debug: the UserError propagates (traceback)
        cli(eval_script.main, ["--ckpt", str(cut), "--debug"])
    line = _probe(capsys, eval_script.main, ["--ckpt", str(run / "ckpt" / "last.pt"),
                                             "--out_dir", str(notes / "sub")])
    assert "evaluation folder" in line


def test_probe_as_a_real_subprocess(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    proc = subprocess.run([sys.executable, "eval.py", "--ckpt", str(notes)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: not a readable checkpoint of "
                                                   "gaussian-shell-maps"), lines
    assert "weights_only" not in proc.stderr + proc.stdout


def test_unreadable_checkpoints_raise_checkpoint_error(tmp_path):
    path = tmp_path / "random.pt"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)
    # a pickle with a disallowed global: torch's message would advise weights_only=False
    torch.save({"format_version": 1, "obj": torch.nn.Linear(1, 1)}, tmp_path / "module.pt")
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(tmp_path / "module.pt")
    assert "weights_only" not in str(exc.value) and "\n" not in str(exc.value)
    save_checkpoint(tmp_path / "other.pt", arch="rl-hvae", step=1, config={}, model={})
    with pytest.raises(CheckpointError, match="written by 'rl-hvae'"):
        load_run(tmp_path / "other.pt")
    torch.save({"format_version": 99, "arch": "gaussian-shell-maps"}, tmp_path / "v99.pt")
    with pytest.raises(CheckpointError, match="format_version 99"):
        load_checkpoint(tmp_path / "v99.pt")


def test_save_rotates_and_resume_falls_back_to_the_previous(tmp_path, capsys):
    ckpt = tmp_path / "ckpt" / "last.pt"
    assert resume_checkpoint(ckpt.parent) is None
    for step in (1, 2):
        save_checkpoint(ckpt, arch="gaussian-shell-maps", step=step, config={})
    assert load_checkpoint(ckpt)["step"] == 2
    assert load_checkpoint(ckpt.with_name("last.prev.pt"))["step"] == 1
    assert not list(ckpt.parent.glob("*.tmp"))
    ckpt.write_bytes(ckpt.read_bytes()[:100])  # truncated
    assert resume_checkpoint(ckpt.parent)["step"] == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"warning: {ckpt} is not readable (")
    assert err[0].endswith(f"resuming from {ckpt.with_name('last.prev.pt')} (step 1)")
    ckpt.unlink()  # killed between the two renames: only last.prev.pt exists
    assert resume_checkpoint(ckpt.parent)["step"] == 1
    ckpt.with_name("last.prev.pt").write_text("garbage")
    ckpt.write_text("garbage")
    with pytest.raises(CheckpointError, match="neither"):
        resume_checkpoint(ckpt.parent)


def test_truncated_last_resumes_from_prev_like_the_uninterrupted_run(tmp_path, capsys):
    """Probe 7: saves at steps 2 and 4 of 4; truncate last.pt (step 4) to half; the same command
    resumes from last.prev.pt (step 2) and ends where the uninterrupted 4-step run ended."""
    args = ["--config", TINY, *FAST, "--r1_interval", "2", "--save_every", "2", "--steps", "4"]
    full = train_script.main([*args, "--out_dir", str(tmp_path / "full")])
    part = tmp_path / "part"
    train_script.main([*args, "--out_dir", str(part)])
    last = part / "ckpt" / "last.pt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    capsys.readouterr()
    resumed = train_script.main([*args, "--out_dir", str(part)])
    captured = capsys.readouterr()
    assert "resuming from" in captured.err and "(step 2)" in captured.err
    assert "resumed from step 2" in captured.out
    assert resumed["step"] == full["step"] == 4
    a = load_checkpoint(tmp_path / "full" / "ckpt" / "last.pt")
    b = load_checkpoint(last)
    assert a["step"] == b["step"] == 4
    for key in ("model", "ema", "disc"):
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), (key, name)


def test_a_checkpoint_of_another_config_is_a_user_error(tmp_path, run):
    args = ["--config", TINY, *FAST, "--steps", "4", "--out_dir", str(run)]
    with pytest.raises(UserError, match="num_gaussians: 200 -> 400"):
        train_script.main([*args, "--num_gaussians", "400"])
    assert json.loads((run / "config.json").read_text())["num_gaussians"] == 200  # kept

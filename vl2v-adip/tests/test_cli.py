import json
from pathlib import Path

import pytest
import torch
from conftest import FAST, ROOT, TINY

from vl2v_adip.runtime import UserError


def _load(name):
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, ROOT / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_train_then_eval_round_trip(tmp_path):
    train, evaluate = _load("train"), _load("eval")
    out = tmp_path / "run"
    result = train.main(["--config", str(TINY), *FAST, "--steps", "3", "--out_dir", str(out)])
    for f in ("config.json", "metrics.jsonl", "ckpt/last.pt", "teacher.pt"):
        assert (out / f).is_file(), f
    ev = evaluate.main(["--ckpt", str(out / "ckpt" / "last.pt")])
    assert (out / "eval" / "eval.json").is_file()
    assert (out / "eval" / "accuracy_per_domain.png").stat().st_size > 1000
    # eval reproduces the selected model's numbers from the checkpoint alone
    assert ev["student"]["ood_acc"] == pytest.approx(result["ood_acc"])
    assert json.loads((out / "eval" / "eval.json").read_text())["test_domain"] == "photo"


def test_zeroshot_method_and_eval(tmp_path):
    train, evaluate = _load("train"), _load("eval")
    out = tmp_path / "zs"
    res = train.main(["--config", str(TINY), *FAST, "--method", "zeroshot", "--out_dir", str(out)])
    ev = evaluate.main(["--ckpt", str(out / "ckpt" / "last.pt")])
    assert ev["teacher_zeroshot"]["ood_acc"] == pytest.approx(res["ood_acc"])


def test_eval_rejects_mismatched_teacher_and_architecture(tmp_path):
    from vl2v_adip.runtime import save_checkpoint
    from vl2v_adip.teacher import build_stand_in, save_teacher
    train, evaluate = _load("train"), _load("eval")
    out = tmp_path / "run"
    train.main(["--config", str(TINY), *FAST, "--out_dir", str(out)])
    ckpt_path = out / "ckpt" / "last.pt"
    ckpt = torch.load(ckpt_path, weights_only=True)
    # a teacher whose embedding size differs from the student's projection
    other = build_stand_in(["circle"], [], 8, 24)
    save_teacher(other, tmp_path / "other.pt")
    bad = dict(ckpt, meta=dict(ckpt["meta"], teacher_file=str(tmp_path / "other.pt")))
    save_checkpoint(tmp_path / "bad1.pt", **{k: v for k, v in bad.items()
                                              if k != "format_version"})
    with pytest.raises(ValueError, match="embedding size 24 does not match"):
        evaluate.main(["--ckpt", str(tmp_path / "bad1.pt")])
    # a checkpoint whose weights belong to another architecture
    cfg = dict(ckpt["config"], student_width=12)
    save_checkpoint(tmp_path / "bad2.pt", **{k: v for k, v in dict(ckpt, config=cfg).items()
                                              if k != "format_version"})
    with pytest.raises(ValueError, match="does not match the architecture"):
        evaluate.main(["--ckpt", str(tmp_path / "bad2.pt")])
    with pytest.raises(UserError, match="checkpoint not found"):
        evaluate.main(["--ckpt", str(Path(tmp_path) / "nope.pt")])


# ------------------------------------------------------------ issue 23: the probe, in-process
def _probe(script: str, argv: list[str], capsys) -> str:
    """Run `script`.main through runtime.cli; returns stderr; asserts exit status 2."""
    from vl2v_adip.runtime import cli

    mod = _load(script)
    with pytest.raises(SystemExit) as exit_info:
        cli(mod.main, argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("probe") / "run"
    _load("train").main(["--config", str(TINY), *FAST, "--out_dir", str(out)])
    return out


def test_probe_bad_key_and_missing_data_root(tmp_path, capsys):
    line = _probe("train", ["--config", str(TINY), "--no_such_key", "1"], capsys)
    assert "unknown config key(s) ['no_such_key']" in line and "valid keys:" in line
    line = _probe("train", ["--config", str(TINY), "--data_name", "PACS", "--data_root",
                            "/nonexistent", "--out_dir", str(tmp_path / "x")], capsys)
    assert line.startswith("error: data_root not found: /nonexistent")
    line = _probe("train", ["--config", str(TINY), "--steps", "-3"], capsys)
    assert "steps=-3" in line
    line = _probe("train", ["--config", str(TINY), "--out_dir", "/proc/no_write"], capsys)
    assert "output folder is not writable" in line


def test_probe_checkpoints(trained_run, tmp_path, capsys):
    line = _probe("eval", ["--ckpt", "/nonexistent/last.pt"], capsys)
    assert line.startswith("error: checkpoint not found: /nonexistent/last.pt")
    notes = tmp_path / "notes.txt"
    notes.write_text("these are my notes, not a checkpoint\n")
    line = _probe("eval", ["--ckpt", str(notes)], capsys)
    assert line.startswith(f"error: not a readable checkpoint of vl2v-adip: {notes}")
    assert "weights_only" not in line
    data = (trained_run / "ckpt" / "last.pt").read_bytes()
    for cut in (len(data) // 2, 100):
        bad = tmp_path / f"cut{cut}.pt"
        bad.write_bytes(data[:cut])
        line = _probe("eval", ["--ckpt", str(bad)], capsys)
        assert line.startswith(f"error: not a readable checkpoint of vl2v-adip: {bad}")
        assert "weights_only" not in line
    # a pickle with a disallowed global: refused by weights_only, reported without the advice
    import pickle

    evil = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "x": Path("x")}, evil, pickle_module=pickle)
    line = _probe("eval", ["--ckpt", str(evil)], capsys)
    assert "not a readable checkpoint" in line and "weights_only" not in line
    line = _probe("eval", ["--ckpt", str(trained_run / "ckpt" / "last.pt"), "--device",
                           "tpu9"], capsys)
    assert "device='tpu9'" in line


def test_debug_flag_shows_the_traceback(tmp_path):
    from vl2v_adip.runtime import CheckpointError, ConfigError, cli

    with pytest.raises(ConfigError):
        cli(_load("train").main, ["--config", str(TINY), "--no_such_key", "1", "--debug"])
    with pytest.raises(CheckpointError):
        cli(_load("eval").main, ["--ckpt", str(tmp_path / "nope.pt"), "--debug"])


def test_probe_as_a_subprocess(tmp_path):
    """The real exit status and stderr of `python eval.py --ckpt notes.txt`."""
    import subprocess
    import sys

    notes = tmp_path / "notes.txt"
    notes.write_text("not a checkpoint")
    proc = subprocess.run([sys.executable, str(ROOT / "eval.py"), "--ckpt", str(notes)],
                          check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    expected = (f"error: not a readable checkpoint of vl2v-adip: {notes} (not a PyTorch "
                "checkpoint, or one holding objects other than tensors and plain types) "
                "(use <run>/ckpt/last.pt or last.prev.pt of a train.py run)")
    assert lines == [expected], lines

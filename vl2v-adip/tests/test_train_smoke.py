import json

import pytest
import torch
from conftest import FAST, TINY

from vl2v_adip.config import parse_config
from vl2v_adip.engine import fit
from vl2v_adip.runtime import load_checkpoint


def test_adip_black_box_writes_run_and_never_copies_teacher(tiny_argv, monkeypatch):
    from vl2v_adip.teacher import ClipTeacher

    def forbidden(self):
        raise AssertionError("black-box run read the teacher's weights")
    monkeypatch.setattr(ClipTeacher, "vision_tower_copy", forbidden)
    result = fit(parse_config(tiny_argv))
    run = result["run_dir"]
    ckpt = load_checkpoint(f"{run}/ckpt/last.pt")
    assert ckpt["step"] == 5 and ckpt["stage"] == "distill"
    assert not any(k.startswith("image_tower") or "text_model" in k for k in ckpt["model"])
    with open(f"{run}/metrics.jsonl") as f:
        recs = [json.loads(line) for line in f]
    assert {r["split"] for r in recs} >= {"train", "val", "teacher_zeroshot"}
    assert 0 <= result["ood_acc"] <= 1 and result["teacher_queries"] > 0


def test_white_box_student_is_teacher_tower(tmp_path):
    argv = ["--config", str(TINY), *FAST, "--teacher_access", "white_box",
            "--out_dir", str(tmp_path / "wb")]
    result = fit(parse_config(argv))
    ckpt = load_checkpoint(f"{result['run_dir']}/ckpt/last.pt")
    assert any(k.startswith("backbone.body") for k in ckpt["model"])
    with pytest.raises(ValueError, match="white_box"):
        fit(parse_config(argv[:-1] + [str(tmp_path / "wb2"), "--method", "erm"]))


def test_resume_reproduces_uninterrupted_run(tmp_path):
    base = ["--config", str(TINY), *FAST, "--method", "kd"]
    full = fit(parse_config(base + ["--out_dir", str(tmp_path / "full")]))
    part = tmp_path / "part"
    fit(parse_config(base + ["--out_dir", str(part), "--steps", "2"]))
    resumed = fit(parse_config(base + ["--out_dir", str(part)]))
    a = load_checkpoint(f"{full['run_dir']}/ckpt/last.pt")["model"]
    b = load_checkpoint(f"{resumed['run_dir']}/ckpt/last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_non_finite_loss_raises(tiny_argv, monkeypatch):
    from vl2v_adip import engine

    real = engine.alignment_loss
    monkeypatch.setattr(engine, "alignment_loss", lambda *a: real(*a) * float("nan"))
    with pytest.raises(FloatingPointError, match="'loss': nan"):
        fit(parse_config(tiny_argv))


@pytest.mark.slow
def test_short_training_beats_chance_out_of_domain(tmp_path):
    """ERM on sketch/cartoon/texture for a short while must beat chance (1/6) on photo."""
    argv = ["--config", str(TINY), "--method", "erm", "--synth_per_domain", "120",
            "--student_pretrain_steps", "0", "--steps", "200", "--batch_size", "16",
            "--lr", "3e-3", "--eval_every", "40", "--teacher_pretrain_steps", "1",
            "--teacher_pretrain_per_domain", "12", "--freeze_bn", "false",  # from scratch
            "--out_dir", str(tmp_path / "erm")]
    result = fit(parse_config(argv))
    assert result["id_acc"] > 0.6, result
    assert result["ood_acc"] > 1 / 6 + 0.1, result

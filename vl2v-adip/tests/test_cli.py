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

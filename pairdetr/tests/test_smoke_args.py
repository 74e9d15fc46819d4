"""The paper-preset smoke run (smoke.py) changes only what issue 24 allows."""

import dataclasses
from pathlib import Path

from conftest import ROOT

import smoke
from pairdetr.config import load_config, parse_config

ALLOWED = {"config_name", "data_name", "data_num_train", "data_num_val", "eval_max_images",
           "device", "batch_size", "out_dir", "steps"}


def test_smoke_overrides_only_data_source_steps_eval_size_device_batch(monkeypatch):
    monkeypatch.chdir(ROOT)
    args = smoke.train_args("cpu", 1, Path("/tmp/smoke-run"))
    smoked = parse_config(args + ["--steps", "2"])
    paper = load_config(ROOT / "configs" / "paper.toml")
    changed = {f.name for f in dataclasses.fields(paper)
               if getattr(smoked, f.name) != getattr(paper, f.name)}
    assert changed <= ALLOWED, changed - ALLOWED
    assert smoked.model_backbone == "resnet50" and smoked.model_num_queries == 1500
    assert smoked.data_image_size == 800 and smoked.data_max_size == 1400


def test_smoke_starts_from_a_fresh_run_folder(tmp_path):
    """An earlier smoke's checkpoints (else it would resume) and metrics.jsonl (else an old
    cuda_max_mem_mib would be reported) are removed."""
    run = tmp_path / "run"
    (run / "ckpt").mkdir(parents=True)
    for name in ("ckpt/last.pt", "ckpt/last.prev.pt", "metrics.jsonl", "config.json"):
        (run / name).write_text("old")
    smoke.fresh_run(run)
    assert sorted(p.name for p in run.rglob("*") if p.is_file()) == ["config.json"]
    smoke.fresh_run(tmp_path / "new")
    assert (tmp_path / "new" / "ckpt").is_dir()

import dataclasses

import pytest
import torch

from pairdetr import engine
from pairdetr.data import PairDataset, collate


def test_overfits_one_synthetic_image(tiny_cfg):
    cfg = dataclasses.replace(tiny_cfg, lr=2e-3, lr_backbone=2e-3, data_num_train=1,
                              grad_clip=0.0)
    torch.manual_seed(0)
    records = engine.build_records(cfg, "train")
    model = engine.build_model(cfg)
    criterion, optimizer = engine.build_criterion(cfg), engine.build_optimizer(cfg, model)
    batch = collate([PairDataset(records, cfg.data_image_size, cfg.data_max_size)[0]])
    losses = [engine.train_step(model, criterion, optimizer, batch, cfg, s, torch.device("cpu"))
              for s in range(60)]
    first, last = losses[0]["loss"], min(x["loss"] for x in losses[-10:])
    assert last < first / 4, (first, last)
    assert losses[-1]["loss_bbox"] < losses[0]["loss_bbox"] / 4


def test_non_finite_loss_raises(tiny_cfg):
    records = engine.build_records(tiny_cfg, "train")
    model = engine.build_model(tiny_cfg)
    with torch.no_grad():
        model.class_head.bias.fill_(float("nan"))
    batch = collate([PairDataset(records, 64, 80)[0]])
    optimizer = engine.build_optimizer(tiny_cfg, model)
    with pytest.raises(FloatingPointError, match="non-finite matching cost"):
        engine.train_step(model, engine.build_criterion(tiny_cfg), optimizer, batch, tiny_cfg, 0,
                          torch.device("cpu"))

    def nan_criterion(outputs, targets):
        return {"loss": torch.tensor(float("nan")), "loss_ce": torch.tensor(float("nan"))}

    with pytest.raises(FloatingPointError, match="loss_ce"):
        engine.train_step(engine.build_model(tiny_cfg), nan_criterion, optimizer, batch,
                          tiny_cfg, 0, torch.device("cpu"))


def test_resume_reproduces_uninterrupted_run(tiny_cfg, tmp_path):
    cfg = dataclasses.replace(tiny_cfg, steps=4, save_every=2, model_dropout=0.1)
    engine.fit(dataclasses.replace(cfg, out_dir=str(tmp_path / "full")))
    engine.fit(dataclasses.replace(cfg, out_dir=str(tmp_path / "part"), steps=2))
    engine.fit(dataclasses.replace(cfg, out_dir=str(tmp_path / "part")))
    full = torch.load(tmp_path / "full/ckpt/last.pt", weights_only=True)
    part = torch.load(tmp_path / "part/ckpt/last.pt", weights_only=True)
    assert full["step"] == part["step"] == 4
    for key, value in full["model"].items():
        torch.testing.assert_close(part["model"][key], value, msg=key)


def test_two_stage_baseline_trains(tiny_cfg, tmp_path):
    cfg = dataclasses.replace(tiny_cfg, method="two_stage", steps=2,
                              out_dir=str(tmp_path / "base"))
    result = engine.fit(cfg)
    assert "val_mMR_All" in result and result["step"] == 2

"""The official training details of issue 21: frozen BatchNorm, the prompt, the teacher's input
normalisation, the Align selection rule and the per-student SWAD mode."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import FAST, TINY

from vl2v_adip.config import parse_config, swad_mode_of
from vl2v_adip.data import SYNTH_CLASSES
from vl2v_adip.engine import _select, make_optimizer, train_step
from vl2v_adip.model import SmallCNN, Student
from vl2v_adip.teacher import CLIP_MEAN, CLIP_STD, BlackBoxTeacher, build_stand_in


def _bn_buffers(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()
            if "running_" in k or "num_batches" in k}


@pytest.mark.parametrize("method,stage", [("adip", "distill"), ("erm", "train"),
                                          ("kd", "train")])
@pytest.mark.parametrize("freeze_bn", [True, False])
def test_batchnorm_statistics_frozen_in_training_steps(method, stage, freeze_bn, rng):
    torch.manual_seed(0)
    teacher = build_stand_in(list(SYNTH_CLASSES), [], 8, 16).eval()
    oracle = BlackBoxTeacher(teacher)
    class_emb = oracle.class_embeddings(list(SYNTH_CLASSES))
    cfg = parse_config(["--method", method, "--lr", "1e-2", "--freeze_bn", str(freeze_bn)])
    head = "text" if method == "adip" else "linear"
    model = Student(SmallCNN(8), head, 6, class_emb, oracle.scale())
    before, weights = _bn_buffers(model), {k: v.clone() for k, v in model.named_parameters()}
    opt = make_optimizer(cfg, model, stage)
    x, y = torch.rand(8, 3, 32, 32, generator=rng), torch.arange(8) % 6
    for _ in range(3):
        train_step(cfg, model, opt, oracle, class_emb, x, y, stage, np.random.default_rng(0))
    after = _bn_buffers(model)
    same = all(torch.equal(before[k], after[k]) for k in before)
    assert same == freeze_bn  # frozen: running statistics untouched; else updated
    # the BatchNorm affine weights still train (official freeze_bn only sets eval mode)
    bn_w = [k for k in weights if k.startswith("backbone.body.2.")]
    assert bn_w and not all(torch.equal(weights[k], dict(model.named_parameters())[k])
                            for k in bn_w)


def test_fit_with_frozen_batchnorm_keeps_pretrained_statistics_in_swad_model(tmp_path):
    """Paper preset behaviour end to end: Align + Distill with SWAD; the SWAD model's BatchNorm
    statistics are the pre-trained student's (no re-estimation), as are the online model's."""
    from vl2v_adip.engine import fit
    from vl2v_adip.runtime import load_checkpoint

    out = tmp_path / "run"
    fit(parse_config(["--config", str(TINY), *FAST, "--steps", "6", "--eval_every", "1",
                      "--swad", "true", "--freeze_bn", "true", "--out_dir", str(out)]))
    init = torch.load(out / "student_init.pt", weights_only=True)["state"]
    ckpt = load_checkpoint(out / "ckpt" / "last.pt")
    for state in (ckpt["model"], ckpt["swad_model"]):
        for k, v in init.items():
            if "running_" in k:
                assert torch.equal(state[f"backbone.{k}"], v), k
    assert any(not torch.equal(ckpt["swad_model"][f"backbone.{k}"], v)
               for k, v in init.items() if "running_" not in k and "num_batches" not in k)


def test_default_prompt_is_the_official_template():
    cfg = parse_config([])
    assert cfg.prompt_templates == ("a photo of a {}",)  # official prompt_style 2
    torch.manual_seed(0)
    teacher = build_stand_in(["circle", "big_star"], [], 8, 16).eval()
    emb = BlackBoxTeacher(teacher).class_embeddings(["circle", "big_star"], cfg.prompt_templates)
    manual = teacher.encode_text(["a photo of a circle", "a photo of a big star"])  # "_" -> " "
    torch.testing.assert_close(emb, manual)
    with pytest.raises(ValueError, match="prompt_templates"):
        parse_config(["--prompt_templates", "a photo of a {x}"])


@pytest.mark.parametrize("kind,mean,std", [("clip", CLIP_MEAN, CLIP_STD),
                                           ("imagenet", (0.485, 0.456, 0.406),
                                            (0.229, 0.224, 0.225))])
def test_teacher_input_normalisation(kind, mean, std, rng):
    """official ("imagenet"): the teacher's tower sees (x - ImageNet mean) / ImageNet std, as
    the official code hands CLIP the DomainBed tensors; "clip": CLIP's own statistics."""
    torch.manual_seed(0)
    teacher = build_stand_in(list(SYNTH_CLASSES), [], 8, 16).eval()
    x = torch.rand(2, 3, 32, 32, generator=rng)
    body = teacher.image_tower.body
    teacher.set_input_norm(kind)
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    by_hand = teacher.image_tower.out(body[1:]((x - m) / s).mean(dim=(2, 3)))
    torch.testing.assert_close(teacher.encode_image(x), torch.nn.functional.normalize(
        by_hand, dim=-1))
    copy = teacher.vision_tower_copy()  # the white-box student sees the same input
    torch.testing.assert_close(copy(x), by_hand)


def test_hf_clip_tower_normalisation_switch(rng):
    from transformers import CLIPVisionConfig, CLIPVisionModel

    from vl2v_adip.teacher import ImageTower

    vision = CLIPVisionModel(CLIPVisionConfig(hidden_size=32, intermediate_size=64,
                                              num_hidden_layers=1, num_attention_heads=2,
                                              image_size=16, patch_size=8)).eval()
    tower = ImageTower(vision, torch.nn.Linear(32, 8, bias=False), 16)
    x = torch.rand(2, 3, 16, 16, generator=rng)
    imnet = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    from vl2v_adip.teacher import ClipTeacher, WordTokenizer

    t = ClipTeacher(tower, torch.nn.Identity(), torch.nn.Linear(4, 8), WordTokenizer([]))
    t.set_input_norm("imagenet")
    with torch.no_grad():
        torch.testing.assert_close(tower(x), tower.projection(vision(pixel_values=imnet)
                                                              .pooler_output))


def test_align_selection_follows_the_official_save_rule():
    """Stage-1 TE*_best.pth: saved whenever the current training-domain validation accuracy
    equals the best so far and the step is >= model_save; the last such save is loaded."""
    cfg = parse_config(["--align_select_from", "3"])
    loop = {"best_align": None, "align_max": -1.0, "selected": None}
    model = torch.nn.Linear(1, 1)
    for t, acc in enumerate([0.9, 0.5, 0.6, 0.7, 0.9, 0.8, 0.9, 0.85], start=1):
        _select(cfg, loop, "align", t, t, {"id_acc": acc}, model)
    assert loop["best_align"]["step"] == 7  # ties with the step-1 maximum; later one wins
    for t, acc in enumerate([0.5, 0.7, 0.7, 0.6], start=1):
        _select(cfg, loop, "distill", t, t, {"id_acc": acc}, model)
    assert loop["selected"]["step"] == 2  # training-domain validation: the first maximum


def test_swad_mode_follows_the_official_script_of_the_student():
    assert swad_mode_of(parse_config(["--student_arch", "resnet50"])) == "official_fix"
    assert swad_mode_of(parse_config(["--student_arch", "vit_small_patch16_224"])) == \
        "official_fix"
    assert swad_mode_of(parse_config(["--student_arch", "vit_base_patch16_224"])) == "standard"
    assert swad_mode_of(parse_config(["--swad_mode", "standard"])) == "standard"
    paper = parse_config(["--config", str(TINY.parent / "paper.toml")])
    assert (paper.swad, swad_mode_of(paper), paper.swad_valley, paper.freeze_bn) == (
        True, "official_fix", "official", True)
    assert (paper.teacher_input_norm, paper.prompt_templates) == ("imagenet",
                                                                  ("a photo of a {}",))
    # official split: trial seed 0 in every script, 20 % "out" (DomainBed holdout_fraction)
    assert (paper.trial_seed, paper.holdout_fraction) == (0, 0.2)

import numpy as np
import pytest
import torch

from vl2v_adip.config import parse_config
from vl2v_adip.data import SYNTH_CLASSES
from vl2v_adip.engine import make_optimizer, train_step
from vl2v_adip.model import SmallCNN, Student
from vl2v_adip.teacher import (
    BlackBoxTeacher,
    ClipTeacher,
    WordTokenizer,
    build_stand_in,
    load_teacher,
    save_teacher,
)


def _teacher(width=8, dim=16):
    torch.manual_seed(0)
    return build_stand_in(list(SYNTH_CLASSES), ["sketch"], width, dim).eval()


def _forbid_weight_access(teacher):
    def boom(*args, **kwargs):
        raise AssertionError("teacher weights were read in black-box mode")
    names = ("parameters", "named_parameters", "state_dict", "buffers")
    modules = list(teacher.modules())
    for m in modules:
        for name in names:
            object.__setattr__(m, name, boom)

    def undo():
        for m in modules:
            for name in names:
                del m.__dict__[name]
    return undo


@pytest.mark.parametrize("method,stage", [("adip", "align"), ("adip", "distill"), ("kd", "train")])
def test_black_box_never_reads_teacher_parameters_or_gradients(method, stage, rng):
    teacher = _teacher()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    oracle = BlackBoxTeacher(teacher)
    class_emb = oracle.class_embeddings(list(SYNTH_CLASSES))
    undo = _forbid_weight_access(teacher)
    cfg = parse_config(["--method", method, "--lr", "1e-2", "--align_lr", "1e-2"])
    head = "text" if method == "adip" else "linear"
    model = Student(SmallCNN(8), head, 6, class_emb, oracle.scale())
    opt = make_optimizer(cfg, model, stage)
    x, y = torch.rand(8, 3, 32, 32, generator=rng), torch.arange(8) % 6
    train_step(cfg, model, opt, oracle, class_emb, x, y, stage, np.random.default_rng(0))
    emb = oracle.image_embeddings(x)
    assert not emb.requires_grad and emb.grad_fn is None
    assert oracle.num_image_queries == 16
    assert not hasattr(oracle, "parameters")
    # the same guard does fire when weights are read (white-box copy):
    with pytest.raises(AssertionError, match="black-box"):
        teacher.vision_tower_copy()
    undo()
    for p in teacher.parameters():
        assert p.grad is None
    after = teacher.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_white_box_copy_equals_teacher_tower_and_is_independent(rng):
    teacher = _teacher()
    tower = teacher.vision_tower_copy()
    x = torch.rand(2, 3, 32, 32, generator=rng)
    torch.testing.assert_close(torch.nn.functional.normalize(tower(x), dim=-1),
                               teacher.encode_image(x))
    with torch.no_grad():
        next(tower.parameters()).add_(1.0)
    assert not torch.equal(next(tower.parameters()), next(teacher.image_tower.parameters()))


def test_class_embeddings_normalised_template_average():
    teacher = _teacher()
    emb = teacher.class_embeddings(["circle", "square"], templates=("a {}.", "a photo of a {}."))
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(2))
    manual = torch.nn.functional.normalize(
        teacher.encode_text(["a circle.", "a photo of a circle."]).mean(0), dim=-1)
    torch.testing.assert_close(emb[0], manual)


def test_save_load_round_trip(tmp_path, rng):
    teacher = _teacher()
    save_teacher(teacher, tmp_path / "t.pt")
    again = load_teacher(tmp_path / "t.pt")
    x = torch.rand(2, 3, 32, 32, generator=rng)
    assert torch.equal(teacher.encode_image(x), again.encode_image(x))
    assert torch.equal(teacher.class_embeddings(["star"]), again.class_embeddings(["star"]))
    (tmp_path / "bad.pt").write_bytes(b"")
    torch.save({"kind": "something else"}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="not a teacher"):
        load_teacher(tmp_path / "bad.pt")
    with pytest.raises(FileNotFoundError):
        load_teacher(tmp_path / "missing.pt")


def test_hf_clip_model_works_as_teacher(tmp_path, rng):
    """A transformers CLIPModel (random weights, small config) behind the same interface,
    saved and re-loaded as a Hugging Face folder like real CLIP weights."""
    from transformers import CLIPConfig, CLIPModel

    tok = WordTokenizer.build(["a", "photo", "of", "circle", "square"])
    text = {"vocab_size": len(tok.vocab), "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 1, "num_attention_heads": 2, "max_position_embeddings": 12,
            "eos_token_id": tok.eos_id}
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
              "num_attention_heads": 2, "image_size": 16, "patch_size": 8}
    cfg = CLIPConfig(text_config=text, vision_config=vision,
                     projection_dim=24)
    teacher = ClipTeacher.from_hf_clip(CLIPModel(cfg).eval(), tok)
    x = torch.rand(3, 3, 32, 32, generator=rng)  # resized to 16 inside
    assert teacher.encode_image(x).shape == (3, 24)
    assert teacher.class_embeddings(["circle", "square"]).shape == (2, 24)
    tower = teacher.vision_tower_copy()
    torch.testing.assert_close(torch.nn.functional.normalize(tower(x), dim=-1),
                               teacher.encode_image(x))

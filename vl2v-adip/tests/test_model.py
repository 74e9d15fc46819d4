import pytest
import torch
import torch.nn.functional as F

from vl2v_adip.model import SmallCNN, Student, TextClassifier


def test_text_classifier_predicts_class_of_its_embedding(rng):
    emb = F.normalize(torch.randn(6, 16, generator=rng), dim=-1)
    clf = TextClassifier(emb, logit_scale=50.0)
    assert torch.equal(clf(emb).argmax(-1), torch.arange(6))
    # any positive rescaling of the feature gives the same prediction
    assert torch.equal(clf(7.0 * emb).argmax(-1), torch.arange(6))
    torch.testing.assert_close(clf(emb).diagonal(), torch.full((6,), 50.0))


def test_student_shapes_and_gradients(rng):
    emb = F.normalize(torch.randn(6, 16, generator=rng), dim=-1)
    for head in ("text", "linear"):
        m = Student(SmallCNN(8), head, 6, emb)
        x = torch.rand(3, 3, 32, 32, generator=rng)
        out = m(x)
        assert out.shape == (3, 6)
        out.sum().backward()
        grads = [p.grad for p in m.parameters() if p.requires_grad]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_student_rejects_mismatched_identity_projection(rng):
    with pytest.raises(ValueError, match="embedding size"):
        Student(SmallCNN(8), "text", 6, torch.randn(6, 5), use_projection=False)


def test_timm_backbone_builds_from_config():
    from vl2v_adip.model import TimmBackbone

    net = TimmBackbone("resnet18", image_size=32)
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, net.num_features)
    with pytest.raises(FileNotFoundError):
        TimmBackbone("resnet18", 32, weights="/nonexistent/weights.pth")

import math

import torch

from pathdino.losses import DINOLoss, _reference_dino_loss


def test_uniform_outputs_give_log_k():
    k, batch, crops = 32, 3, 4
    loss_fn = DINOLoss(k, crops)
    loss = loss_fn(torch.zeros(crops * batch, k), torch.zeros(2 * batch, k), teacher_temp=0.04)
    torch.testing.assert_close(loss, torch.tensor(math.log(k)))


def test_identical_sharp_one_hot_gives_zero():
    k, batch, crops = 16, 4, 5
    labels = torch.arange(batch) % k
    one_hot = torch.nn.functional.one_hot(labels, k).float() * 100.0  # [B, K]
    loss_fn = DINOLoss(k, crops)  # centre starts at 0
    loss = loss_fn(one_hot.repeat(crops, 1), one_hot.repeat(2, 1), teacher_temp=0.04)
    assert loss.item() < 1e-6


def test_matches_reference_loop_and_centre_update():
    g = torch.Generator().manual_seed(0)
    k, batch, crops = 10, 3, 6
    student = torch.randn(crops * batch, k, generator=g)
    teacher = torch.randn(2 * batch, k, generator=g)
    loss_fn = DINOLoss(k, crops, student_temp=0.1, center_momentum=0.9)
    loss_fn.center.copy_(torch.randn(1, k, generator=g))
    centre = loss_fn.center.clone()
    expected = _reference_dino_loss(student, teacher, centre, crops, 0.1, 0.07)
    torch.testing.assert_close(loss_fn(student, teacher, 0.07), expected)
    torch.testing.assert_close(loss_fn.center, 0.9 * centre + 0.1 * teacher.mean(0, keepdim=True))


def test_gradcheck_float64():
    g = torch.Generator().manual_seed(1)
    k, batch, crops = 5, 2, 3
    student = torch.randn(crops * batch, k, generator=g, dtype=torch.float64, requires_grad=True)
    teacher = torch.randn(2 * batch, k, generator=g, dtype=torch.float64)
    loss_fn = DINOLoss(k, crops).double()
    assert torch.autograd.gradcheck(
        lambda s: loss_fn(s, teacher, 0.04, update_center=False), (student,))
    # and the closed form: dL/ds = (P_s - mean P_t) / (tau_s * pairs * B) summed over pairs
    loss_fn(student, teacher, 0.04, update_center=False).backward()
    assert torch.isfinite(student.grad).all()

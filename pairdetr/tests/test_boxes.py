import numpy as np
import torch

from pairdetr.boxes import (
    box_cxcywh_to_xyxy,
    box_xyxy_to_cxcywh,
    generalized_box_iou,
    numpy_iou,
    xywh_to_xyxy,
    xyxy_to_xywh,
)


def test_conversions_round_trip():
    g = torch.Generator().manual_seed(0)
    boxes = torch.rand(10, 4, generator=g, dtype=torch.float64)
    torch.testing.assert_close(box_xyxy_to_cxcywh(box_cxcywh_to_xyxy(boxes)), boxes)
    xywh = np.random.default_rng(0).uniform(1, 50, (6, 4))
    np.testing.assert_allclose(xyxy_to_xywh(xywh_to_xyxy(xywh)), xywh)
    np.testing.assert_allclose(xywh_to_xyxy([[1, 2, 3, 4]]), [[1, 2, 4, 6]])


def test_giou_identical_is_one():
    boxes = torch.tensor([[0.0, 0.0, 2.0, 3.0], [1.0, 1.0, 5.0, 2.0]])
    torch.testing.assert_close(torch.diag(generalized_box_iou(boxes, boxes)), torch.ones(2))


def test_giou_hand_cases():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0]])  # inter 1, union 7, hull 9
    expected = 1 / 7 - (9 - 7) / 9
    torch.testing.assert_close(generalized_box_iou(a, b), torch.tensor([[expected]]))
    c = torch.tensor([[2.0, 0.0, 3.0, 1.0]])
    d = torch.tensor([[0.0, 0.0, 1.0, 1.0]])  # disjoint: iou 0, union 2, hull 3
    torch.testing.assert_close(generalized_box_iou(c, d), torch.tensor([[-1 / 3]]))


def test_giou_gradcheck():
    g = torch.Generator().manual_seed(1)
    xy = torch.rand(3, 2, generator=g, dtype=torch.float64)
    a = torch.cat([xy, xy + 0.5 + torch.rand(3, 2, generator=g, dtype=torch.float64)], 1)
    b = a.detach().flip(0) + 0.1
    a.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: generalized_box_iou(x, b), (a,))


def test_numpy_iou_crowd_uses_detection_area():
    dt = np.array([[0, 0, 2, 2]])
    gt = np.array([[0, 0, 10, 10]])
    np.testing.assert_allclose(numpy_iou(dt, gt), [[4 / 100]])
    np.testing.assert_allclose(numpy_iou(dt, gt, crowd=[True]), [[1.0]])

"""SWAD LossValley: hand-traced selections, resume, BatchNorm recalibration, and a training run."""

from __future__ import annotations

import pytest
import torch
from conftest import FAST, TINY
from torch import nn

from vl2v_adip.swad import LossValley, swad_model


def _scalar_model(value: float) -> nn.Module:
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(value)
    return model


def _run(valley: LossValley, losses, first: int = 0, steps_per_segment: int = 2) -> None:
    """Segment i covers steps 2i+1 and 2i+2; the weight after step t equals t."""
    for i, loss in enumerate(losses, start=first):
        for t in range(steps_per_segment * i + 1, steps_per_segment * (i + 1) + 1):
            valley.accumulate(_scalar_model(float(t)), t)
        valley.close_segment(loss)


def _mean_weight(valley: LossValley) -> float:
    return float(valley.averaged_parameters()["weight"])


def test_valley_start_lookback_and_dead_end_by_hand():
    # n_converge = n_tolerance = 3, threshold = 1.5 x mean(2, 2.5, 2.2) = 3.35.
    # Converges when segments 3..5 (losses 2, 2.5, 2.2) have their minimum first: segment 3
    # starts the average, segment 2 (3.0 <= 3.35) just before it is looked back to; segments
    # 4, 5, 6 are added as later windows stay under 3.35; the window 7..9 (6, 7, 8) is dead.
    valley = LossValley(3, 3, 0.5)
    _run(valley, [5, 4, 3, 2, 2.5, 2.2, 2.4, 6, 7, 8])
    assert valley.converged and valley.dead
    assert valley.threshold == pytest.approx(1.5 * (2 + 2.5 + 2.2) / 3)
    assert (valley.avg_start, valley.avg_end, valley.avg_steps) == (5, 14, 10)
    assert _mean_weight(valley) == pytest.approx((5 + 14) / 2)
    valley.finalize()  # nothing more after a dead valley
    assert valley.avg_end == 14


def test_finalize_adds_pending_segments_still_in_the_valley():
    valley = LossValley(3, 3, 0.5)
    _run(valley, [5, 4, 3, 2, 2.5, 2.2, 2.4, 2.3])
    assert not valley.dead and valley.avg_end == 12  # segments 2..5 decided so far
    valley.finalize()  # pending 6, 7 (2.4, 2.3) are under the threshold
    assert (valley.avg_start, valley.avg_end) == (5, 16)
    assert _mean_weight(valley) == pytest.approx((5 + 16) / 2)


def test_without_convergence_the_last_segment_is_used():
    valley = LossValley(3, 6, 0.3)
    _run(valley, [5, 4, 3, 2, 1])  # still falling: no valley yet
    valley.finalize()
    assert not valley.converged
    assert _mean_weight(valley) == pytest.approx((9 + 10) / 2)


def test_state_dict_round_trip_continues_identically(tmp_path):
    losses = [5, 4, 3, 2, 2.5, 2.2, 2.4, 2.3, 2.6, 9, 9, 9]
    full = LossValley(3, 3, 0.3)
    _run(full, losses)
    part = LossValley(3, 3, 0.3)
    _run(part, losses[:6])
    part.accumulate(_scalar_model(13.0), 13)  # an open segment is saved too
    torch.save(part.state_dict(), tmp_path / "swad.pt")
    resumed = LossValley(3, 3, 0.3)
    resumed.load_state_dict(torch.load(tmp_path / "swad.pt", weights_only=True))
    resumed.accumulate(_scalar_model(14.0), 14)
    resumed.close_segment(losses[6])
    _run(resumed, losses[7:], first=7)
    for v in (full, resumed):
        v.finalize()
    assert resumed.summary() == full.summary()
    assert _mean_weight(resumed) == pytest.approx(_mean_weight(full))


def test_swad_model_loads_average_and_recomputes_batchnorm():
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    params = {k: torch.full_like(p, 0.5) for k, p in model.named_parameters()}
    batches = [torch.randn(8, 3, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    out = swad_model(model, params, batches)
    for p in out.parameters():
        assert torch.all(p == 0.5)
    feats = torch.cat(batches) @ torch.full((3, 3), 0.5).t() + 0.5  # the averaged Linear
    torch.testing.assert_close(out[1].running_mean, feats.mean(0))  # cumulative (momentum None)
    assert not out.training


def test_fit_with_swad_reports_and_saves_the_average(tmp_path):
    from vl2v_adip.config import parse_config
    from vl2v_adip.engine import evaluate, fit
    from vl2v_adip.runtime import load_checkpoint

    out = tmp_path / "swad"
    cfg = parse_config(["--config", str(TINY), *FAST, "--steps", "8", "--eval_every", "1",
                        "--swad", "true", "--swad_n_tolerance", "3", "--swad_bn_steps", "2",
                        "--out_dir", str(out)])
    result = fit(cfg)
    for key in ("swad_start", "swad_end", "swad_steps", "selected_id_acc", "ood_acc"):
        assert key in result, key
    assert 1 <= result["swad_steps"] <= 8  # Distill steps only (Align 2 steps are excluded)
    ckpt = load_checkpoint(out / "ckpt" / "last.pt")
    assert "swad_model" in ckpt and ckpt["swad"] is not None
    ev = evaluate(out / "ckpt" / "last.pt")
    assert ev["final_model"] == "swad"
    assert ev["student"]["ood_acc"] == pytest.approx(result["ood_acc"])

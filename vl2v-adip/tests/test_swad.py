"""SWAD: the reset schedule of the running average (official_fix vs standard), hand-traced
LossValley selections for both rules, resume, BatchNorm handling, and a training run."""

from __future__ import annotations

import pytest
import torch
from conftest import FAST, TINY
from torch import nn

from vl2v_adip.swad import Swad, reset_due, swad_model


def _scalar_model(value: float) -> nn.Module:
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(value)
    return model


def _run(swad: Swad, losses, first: int = 0, per_segment: int = 2) -> None:
    """Segment i covers steps 2i+1 and 2i+2; the weight after step t equals t, so the mean of
    segment i (standard mode) is 2i + 1.5."""
    for i, loss in enumerate(losses, start=first):
        for t in range(per_segment * i + 1, per_segment * (i + 1) + 1):
            swad.accumulate(_scalar_model(float(t)), t)
        swad.close_segment(loss, per_segment * (i + 1))


def _mean_weight(swad: Swad) -> float:
    return float(swad.averaged_parameters()["weight"])


def _summary(swad: Swad) -> tuple:
    s = swad.summary()
    return s["swad_start"], s["swad_end"], s["swad_segments"]


# ----------------------------------------------------------------- reset schedule (issue 21.1)
def test_official_fix_resets_only_at_3000_4000_5000():
    evals = range(200, 5001, 200)  # official PACS/VLCS/OfficeHome/TerraInc: every 200 steps
    assert [t for t in evals if reset_due("official_fix", t)] == [3000, 4000, 5000]
    assert all(reset_due("standard", t) for t in evals)


@pytest.mark.parametrize("mode", ["official_fix", "standard"])
def test_segments_the_valley_sees(mode, monkeypatch):
    """official_fix: each segment is the cumulative mean since step 1 or the last reset (3000,
    4000); standard: the mean of the steps since the previous validation."""
    swad = Swad(mode, "official", 3, 6, 0.3)
    seen = []
    monkeypatch.setattr(swad.valley, "add", seen.append)
    for t in range(1, 5001):
        swad.accumulate(_scalar_model(float(t)), t)
        if t % 200 == 0:
            swad.close_segment(1.0, t)
    spans = {s.end: (s.start, float(s.mean["weight"])) for s in seen}
    assert len(seen) == 25
    for end, (start, mean) in spans.items():
        assert mean == pytest.approx((start + end) / 2)  # weights 1..t: mean of the span
    if mode == "official_fix":
        assert [spans[t][0] for t in (200, 2800, 3000)] == [1, 1, 1]
        assert [spans[t][0] for t in (3200, 4000)] == [3001, 3001]
        assert [spans[t][0] for t in (4200, 5000)] == [4001, 4001]
    else:
        assert all(start == end - 199 for end, (start, _) in spans.items())


# ------------------------------------------------------- the "once" rule (our correction)
def test_once_valley_start_lookback_and_dead_end_by_hand():
    # n_converge = n_tolerance = 3, threshold = 1.5 x mean(2, 2.5, 2.2) = 3.35.
    # Converges when segments 3..5 (losses 2, 2.5, 2.2) have their minimum first: segment 3
    # opens the average, segment 2 (3.0 <= 3.35) just before it is looked back to; segments
    # 4, 5, 6 are added as later windows stay under 3.35; the window 7..9 (6, 7, 8) is dead.
    swad = Swad("standard", "once", 3, 3, 0.5)
    _run(swad, [5, 4, 3, 2, 2.5, 2.2, 2.4, 6, 7, 8])
    assert swad.converged and swad.dead
    assert swad.valley.threshold == pytest.approx(1.5 * (2 + 2.5 + 2.2) / 3)
    assert _summary(swad) == (5, 14, 5)  # segments 2..6
    assert _mean_weight(swad) == pytest.approx((5 + 14) / 2)
    swad.finalize()  # nothing more after a dead valley
    assert _summary(swad)[1] == 14


def test_once_finalize_adds_pending_segments_still_in_the_valley():
    swad = Swad("standard", "once", 3, 3, 0.5)
    _run(swad, [5, 4, 3, 2, 2.5, 2.2, 2.4, 2.3])
    assert not swad.dead and _summary(swad)[1] == 12  # segments 2..5 decided so far
    swad.finalize()  # pending 6, 7 (2.4, 2.3) are under the threshold
    assert _summary(swad)[:2] == (5, 16)
    assert _mean_weight(swad) == pytest.approx((5 + 16) / 2)


@pytest.mark.parametrize("rule", ["once", "official"])
def test_without_convergence_the_last_segment_is_used(rule):
    swad = Swad("standard", rule, 3, 6, 0.3)
    _run(swad, [5, 4, 3, 2, 1])  # still falling: no valley yet
    swad.finalize()
    assert not swad.converged
    assert _mean_weight(swad) == pytest.approx((9 + 10) / 2)


# ------------------------------------------------------ the released LossValley (issue 21.1)
def test_official_valley_full_queue_by_hand():
    """n_converge 3, n_tolerance 6, ratio 0.3 (official config.yaml). Convergence at segment 5
    (window 3..5 = 2, 2.5, 2.2), threshold 1.3 x 2.2333 = 2.9033; the look-back scans
    smooth_q[:4] = segments 0..3, stops at segment 2 (3.0 > threshold) and adds nothing; the
    opening segment 3 is added when it reaches the head of smooth_q, then 4..8; dead at 14."""
    losses = [5, 4, 3, 2, 2.5, 2.2, 2.4, 2.3, 2.6, 9, 9, 9, 9, 9, 9]
    swad = Swad("standard", "official", 3, 6, 0.3)
    _run(swad, losses)
    assert swad.valley.threshold == pytest.approx(1.3 * (2 + 2.5 + 2.2) / 3)
    assert swad.valley.converge_step == 8 and swad.dead
    assert _summary(swad) == (7, 18, 6)  # segments 3..8
    assert _mean_weight(swad) == pytest.approx((7.5 + 17.5) / 2)


def test_official_valley_early_convergence_quirks_by_hand():
    """Convergence at the third validation, when smooth_q is not yet full. Threshold 1.3 x
    mean(2, 3, 3.5) = 3.6833. The look-back takes smooth_q[:4] = segments 0..2 (all under the
    threshold) and adds 1 and 2; the first of them overwrites the opening copy of segment 0.
    Then smooth_q[0] stays segment 0 for three validations (added three times), and 1, 2 come
    round again. Added: 1, 2, 0, 0, 0, 1, 2, 3, 4, 5, 6 (means 2i + 1.5); dead at segment 12.
    The "once" rule on the same losses averages segments 0..6 once each."""
    losses = [2, 3, 3.5, 2.5, 2.6, 2.7, 2.8, 9, 9, 9, 9, 9, 9]
    means = [2 * i + 1.5 for i in range(7)]
    official = Swad("standard", "official", 3, 6, 0.3)
    _run(official, losses)
    assert official.dead and official.valley.converge_step == 2
    added = [1, 2, 0, 0, 0, 1, 2, 3, 4, 5, 6]
    assert _summary(official) == (3, 14, len(added))
    assert _mean_weight(official) == pytest.approx(sum(means[i] for i in added) / len(added))
    once = Swad("standard", "once", 3, 6, 0.3)
    _run(once, losses)
    assert _summary(once) == (1, 14, 7)
    assert _mean_weight(once) == pytest.approx(sum(means) / 7)


def test_official_valley_finalize_drains_smooth_queue():
    """Not dead at the end: the head of smooth_q is dropped (it was added already), then the
    rest is added while the minimum of what remains is under the threshold."""
    swad = Swad("standard", "official", 3, 6, 0.3)
    _run(swad, [5, 4, 3, 2, 2.5, 2.2, 2.4, 2.3, 2.6, 2.5])
    # added so far: segment 3 (at 8), 4 (at 9); smooth_q = 4..9
    assert _summary(swad) == (7, 10, 2)
    swad.finalize()  # drop 4, add 5, 6, 7, 8, 9
    assert _summary(swad) == (7, 20, 7)
    assert _mean_weight(swad) == pytest.approx(sum(2 * i + 1.5 for i in range(3, 10)) / 7)


# ---------------------------------------------------------------------- resume, BatchNorm
@pytest.mark.parametrize("mode,rule", [("standard", "once"), ("official_fix", "official")])
def test_state_dict_round_trip_continues_identically(tmp_path, mode, rule):
    losses = [5, 4, 3, 2, 2.5, 2.2, 2.4, 2.3, 2.6, 9, 9, 9, 9, 9, 9]
    full = Swad(mode, rule, 3, 6, 0.3)
    _run(full, losses)
    part = Swad(mode, rule, 3, 6, 0.3)
    _run(part, losses[:6])
    part.accumulate(_scalar_model(13.0), 13)  # an open segment is saved too
    torch.save(part.state_dict(), tmp_path / "swad.pt")
    resumed = Swad(mode, rule, 3, 6, 0.3)
    resumed.load_state_dict(torch.load(tmp_path / "swad.pt", weights_only=True))
    resumed.accumulate(_scalar_model(14.0), 14)
    resumed.close_segment(losses[6], 14)
    _run(resumed, losses[7:], first=7)
    for v in (full, resumed):
        v.finalize()
    assert resumed.summary() == full.summary()
    assert _mean_weight(resumed) == pytest.approx(_mean_weight(full))


def test_swad_model_recomputes_batchnorm_only_when_given_batches():
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    params = {k: torch.full_like(p, 0.5) for k, p in model.named_parameters()}
    batches = [torch.randn(8, 3, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    frozen = swad_model(nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3)), params, None)
    assert torch.equal(frozen[1].running_mean, torch.zeros(3))  # freeze_bn: untouched
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
    for key in ("swad_start", "swad_end", "swad_segments", "selected_id_acc", "ood_acc"):
        assert key in result, key
    assert 1 <= result["swad_segments"] <= 8
    assert result["swad_start"] >= 1  # Distill-stage steps only
    ckpt = load_checkpoint(out / "ckpt" / "last.pt")
    assert "swad_model" in ckpt and ckpt["swad"] is not None
    ev = evaluate(out / "ckpt" / "last.pt")
    assert ev["final_model"] == "swad"
    assert ev["student"]["ood_acc"] == pytest.approx(result["ood_acc"])

"""Claim-check machinery (reproduce.py) at the smallest size: rows, seeds, mean/std, align curve."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from conftest import FAST, ROOT

from vl2v_adip.runtime import UserError, read_metrics


def _reproduce():
    spec = importlib.util.spec_from_file_location("reproduce", ROOT / "reproduce.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_windowed_align_curve_by_hand():
    rep = _reproduce()
    assert rep.windowed([(10, 1.0), (50, 3.0), (51, 5.0), (100, 7.0), (101, 2.0)]) == {
        50: 2.0, 100: 6.0, 150: 2.0}


def test_default_rows_are_the_base_teacher_comparison():
    rep = _reproduce()
    claim = rep.select_rows("claim")  # the default: must fit the 15-minute budget
    assert list(claim) == ["teacher zero-shot", "student ERM", "naive KD",
                           "VL2V-ADiP (Align 100)", "VL2V-ADiP (Align 800)",
                           "VL2V-SD (white-box)"]
    assert {kind for kind, _ in claim.values()} == {"base"}
    assert list(rep.select_rows("all")) == list(rep.ROWS) and len(rep.ROWS) == 10
    assert list(rep.select_rows("naive KD;student ERM")) == ["naive KD", "student ERM"]


def test_claim_check_rows_seeds_and_summary(tmp_path):
    rep = _reproduce()
    rows = ["teacher zero-shot", "naive KD", "VL2V-ADiP (Align 100)"]
    out = tmp_path / "claim"
    res = rep.main(["--seeds", "0,1", "--rows", ";".join(rows), "--out", str(out),
                    "--overrides", " ".join(FAST)])
    saved = json.loads((out / "results.json").read_text())
    assert list(saved["summary"]) == rows
    for name in rows:
        runs = res["runs"][name]
        assert [r["seed"] for r in runs] == [0, 1]
        s = saved["summary"][name]
        assert s["n"] == 2
        assert s["ood_mean"] == pytest.approx(np.mean([r["ood_acc"] for r in runs]))
        assert s["ood_std"] == pytest.approx(np.std([r["ood_acc"] for r in runs]))
    # the teacher is shared: its zero-shot accuracy cannot depend on the run seed
    zs = res["runs"]["teacher zero-shot"]
    assert zs[0]["ood_acc"] == zs[1]["ood_acc"]
    # align curve = mean over seeds of the logged Align losses (FAST: 2 Align steps, 1 window)
    logged = [[r["loss"] for r in read_metrics(out / f"seed{s}" / "VL2V-ADiP_Align_100")
               if r["split"] == "train" and r.get("stage_id") == 0.0] for s in (0, 1)]
    assert all(len(x) == 2 for x in logged)
    assert saved["align_loss"]["VL2V-ADiP (Align 100)"]["50"] == pytest.approx(
        np.mean([np.mean(x) for x in logged]))
    for f in ("results.md", "accuracy_per_domain.png", "align_loss.png"):
        assert (out / f).stat().st_size > 0
    with pytest.raises(UserError, match="unknown row"):
        rep.main(["--rows", "naive KD;no such row", "--out", str(tmp_path / "x")])

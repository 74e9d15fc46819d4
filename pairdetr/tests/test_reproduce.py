"""The claim-check machinery (reproduce.py): statistics, findings, fresh runs, written files.

Training is replaced by a fake `fit` with known scores, so these tests check what reproduce.py
does with the runs (mean +/- std over seeds, paired differences, the finding rule), not the runs.
"""

import json
import math

import numpy as np
import pytest

import reproduce


def test_finding_needs_every_seed_to_agree_and_a_mean_above_the_spread():
    # MR-type columns: lower is better, so pairs - two-stage < 0 favours pairs
    assert reproduce._finding([-0.05, -0.04, -0.06], "mMR_Heavy") == "pairs better"
    assert reproduce._finding([0.05, 0.04, 0.06], "mMR_Heavy") == "two-stage better"
    # AP: higher is better
    assert reproduce._finding([0.05, 0.04, 0.06], "body_AP") == "pairs better"
    assert reproduce._finding([-0.05, 0.01, -0.06], "mMR_mean") == "~"  # signs disagree
    assert reproduce._finding([-0.01, -0.20, -0.01], "mMR_mean") == "~"  # |mean| <= std
    assert reproduce._finding([-0.0004, -0.0005, -0.0006], "mMR_mean") == "~"  # < 0.1 point
    assert reproduce._finding([-0.05], "mMR_mean") == "~"  # one seed: no spread


def test_fresh_run_removes_old_checkpoints_and_metrics(tmp_path):
    run = tmp_path / "seed1" / "pairdetr"
    (run / "ckpt").mkdir(parents=True)
    for name in ("ckpt/last.pt", "ckpt/last.prev.pt", "metrics.jsonl", "config.json"):
        (run / name).write_text("old")
    reproduce.fresh_run(run)
    assert sorted(p.name for p in run.rglob("*") if p.is_file()) == ["config.json"]
    reproduce.fresh_run(tmp_path / "never_created")  # nothing to remove: no error


def _fake_scores(method: str, seed: int) -> dict:
    """Known per-seed scores: two-stage mMR 0.5 + seed offset, pairs 0.1 lower on every seed."""
    base = 0.5 + 0.01 * (seed % 7) - (0.1 if method == "pairdetr" else 0.0)
    keys = set(reproduce.COLUMNS["corrected"]) | {f"official/{c}"
                                                   for c in reproduce.COLUMNS["official"]}
    return {f"val_{k}": (0.8 if "AP" in k else base) for k in keys}


def test_main_writes_mean_std_table_and_files(tmp_path, monkeypatch):
    calls = []

    def fake_fit(cfg):
        calls.append((cfg.method, cfg.seed, cfg.steps, cfg.lr_drop_step, cfg.save_every))
        return _fake_scores(cfg.method, cfg.seed)

    monkeypatch.setattr(reproduce, "fit", fake_fit)
    monkeypatch.setattr(reproduce, "evaluate_checkpoint", lambda path: None)
    seeds = [1, 2, 4]
    results = reproduce.main(["--steps", "10", "--seeds", "1,2,4", "--out", str(tmp_path)])
    assert calls == [(m, s, 10, 8, 10) for s in seeds for m in reproduce.METHODS]
    for name in ("table.md", "table.json", "metrics.png"):
        assert (tmp_path / name).stat().st_size > 0
    saved = json.loads((tmp_path / "table.json").read_text())
    assert [r["mMR_mean"] for r in saved["two_stage"]] == pytest.approx([0.51, 0.52, 0.54])

    text = (tmp_path / "table.md").read_text()
    mmr = [0.51, 0.52, 0.54]
    expected = f"{100 * np.mean(mmr):.1f} ± {100 * np.std(mmr, ddof=1):.1f}"
    two_stage_row = next(line for line in text.splitlines() if line.startswith("| two_stage"))
    assert expected in two_stage_row
    diff_rows = [line for line in text.splitlines() if line.startswith("| pairs - two-stage")]
    assert len(diff_rows) == 2 and "-10.0 ± 0.0" in diff_rows[0]  # both protocols
    finding_rows = [line for line in text.splitlines() if line.startswith("| finding")]
    # every MR column favours pairs (0.1 lower on each seed); AP equal -> "~"
    corrected = finding_rows[0].split("|")[2:-1]
    for column, cell in zip(reproduce.COLUMNS["corrected"], corrected):
        assert cell.strip() == ("~" if "AP" in column else "pairs better"), column
    assert "10 steps" in text and "seeds [1, 2, 4]" in text
    assert not math.isnan(results["pairdetr"][0]["mMR_mean"])

"""The claim check's machinery (reproduce.py): each variant switches off what it names, each
seed is its own run, and the table's cells are mean +/- population std over seeds. Training and
evaluation themselves are covered by test_train.py; here they are replaced by recorders."""

import json

import pytest

from conftest import TINY
from eye_radiance import claim
from eye_radiance.claim import COLUMNS, VARIANTS, mean_std, table, write_report

INIT = {"pose_axis_err_init_deg": 12.0, "pose_apex_err_init_mm": 20.0}


def test_table_cells_are_mean_and_std_over_seeds():
    runs = [{c: float(i) for c in COLUMNS} | INIT for i in (1, 2, 6)]
    md = table({"full": runs}, steps=7)
    assert mean_std([1.0, 2.0, 6.0]) == pytest.approx((3.0, 2.1602469))
    assert md.count("3 +/- 2.2") == len(COLUMNS)
    assert "3 seed(s), 7 steps each" in md and "axis 12.00 deg" in md


def test_every_variant_and_seed_is_its_own_run(tmp_path, monkeypatch):
    fitted = []
    monkeypatch.setattr(claim, "make_synthetic_capture",
                        lambda path, **kw: (path.mkdir(parents=True),
                                            (path / "transforms_train.json").write_text("{}")))
    monkeypatch.setattr(claim, "fit", fitted.append)
    monkeypatch.setattr(claim, "evaluate", lambda ckpt, figures: {
        **{c: float(len(fitted)) for c in COLUMNS}, **INIT, "ckpt": str(ckpt),
        "figures": figures})
    res = claim.run_variants(TINY, tmp_path, steps=5, seeds=2)
    assert list(res) == list(VARIANTS) and [len(v) for v in res.values()] == [2] * len(VARIANTS)
    assert len({c.out_dir for c in fitted}) == 2 * len(VARIANTS)
    by_run = {(c.texture, c.pose_refine, c.model_cornea, c.seed) for c in fitted}
    assert by_run == {(t, p, m, s) for s in (0, 1) for t, p, m in [
        (True, True, "ellipsoid"), (False, True, "ellipsoid"), (True, False, "ellipsoid"),
        (True, True, "sphere")]}
    assert all(c.steps == 5 and c.data_root == str(tmp_path / "capture") for c in fitted)
    assert [r["figures"] for r in res["full"]] == [True, False]  # figures for seed 0 only
    md = write_report(res, tmp_path, steps=5)
    assert (tmp_path / "reproduce.png").stat().st_size > 1000
    assert json.loads((tmp_path / "results.json").read_text()).keys() == VARIANTS.keys()
    assert md.splitlines()[2].startswith("| full | ") and "2 seed(s), 5 steps" in md

"""The claim check's machinery: table over seeds (mean +/- std), nerfstudio rows, figures."""

from __future__ import annotations

import json

import pytest

from alpha_invariance.claim import run_claim_check, summarise, table_markdown

SMALL = ["--data_image_size", "8", "--data_num_train_views", "2", "--model_num_samples", "8",
         "--model_grid_res", "8", "--batch_rays", "32", "--model_hash_levels", "2",
         "--model_hash_log2_size", "8", "--model_hash_max_res", "16"]


def test_summary_mean_std_and_spread():
    rows = [{"family": "f", "variant": "recipe", "k": k, "psnr": p}
            for k, p in [(1.0, 20.0), (1.0, 22.0), (10.0, 21.0), (10.0, 21.0)]]
    table = summarise(rows)
    mean, std, n = table["f"]["recipe"][1.0]
    assert (mean, n) == (21.0, 2) and std == pytest.approx(2 ** 0.5)
    text = table_markdown(table, [1.0, 10.0])
    assert "| f | recipe | 21.00 ± 1.41 | 21.00 ± 0.00 | 0.00 |" in text


def test_claim_check_end_to_end(tmp_path):
    pytest.importorskip("nerfstudio")
    out = tmp_path / "claim"
    result = run_claim_check(["dvgo"], [1.0, 10.0], steps=2, out_dir=str(out), extra=SMALL,
                             seeds=(0, 1), ns_scales=(1.0,))
    assert len(result["rows"]) == 2 * 2 * 2 + 2 * 2  # dvgo: 2 variants x 2 k x 2 seeds; ns: 2 x 2
    saved = json.loads((out / "table.json").read_text())
    assert saved["table"]["nerfstudio_nerfacto"]["recipe"]["1"]["seeds"] == 2
    for name in ("table.md", "psnr_vs_k.png", "renders_by_k.png"):
        assert (out / name).is_file(), name
    recipe = [r for r in result["rows"] if r["family"] == "dvgo" and r["variant"] == "recipe"]
    assert all(0.97 < r["init_T_mean"] <= 1.0 for r in recipe)
    ns_recipe = [r for r in result["rows"]
                 if r["family"] == "nerfstudio_nerfacto" and r["variant"] == "recipe"]
    assert all(r["init_T_mean"] > 0.97 for r in ns_recipe), ns_recipe

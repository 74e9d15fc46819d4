"""The claim check's machinery (reproduce.py) at 2 updates per run: one row per (arch, method),
mean and std over the seeds from each run's own evaluation, finished runs not retrained."""

import json
import sys

import numpy as np
import pytest

from conftest import ROOT
from rl_hvae.runtime import UserError


def test_claim_check_table_aggregates_seeds(tmp_path):
    sys.path.insert(0, ROOT)
    import reproduce

    out = tmp_path / "claim"
    argv = ["--steps", "2", "--seeds", "0", "1", "--archs", "released", "--methods", "rl",
            "--iw_samples", "2", "--eval_examples", "48", "--no-run_figures", "--out", str(out)]
    results = reproduce.main(argv)
    assert list(results) == ["released rl"]
    for name, rows in results.items():
        method = name.split()[1]
        assert len(rows) == 2 and all(r["method"] == method and r["step"] == 2 for r in rows)
        for seed, row in zip((0, 1), rows):  # each entry is that run's own evaluation
            saved = json.loads((out / f"released_{method}_s{seed}/eval/val.json").read_text())
            assert saved["nll"] == row["nll"]
        assert rows[0]["nll"] != rows[1]["nll"]  # the seeds differ
    md = (out / "results.md").read_text()
    nll = [r["nll"] for r in results["released rl"]]
    row = next(line for line in md.splitlines() if line.startswith("| NLL"))
    assert f"{np.mean(nll):.2f} ± {np.std(nll):.2f}" == row.split("|")[2].strip()
    assert len([line for line in md.splitlines() if line.startswith("| AU z")]) == 5
    assert (out / "reproduce.png").stat().st_size > 0
    assert not (out / "released_rl_s0/eval/levels.png").exists()  # --no-run_figures
    assert json.loads((out / "results.json").read_text()).keys() == results.keys()
    # A second call with the same steps evaluates the finished runs again without training.
    ckpt = out / "released_rl_s0/ckpt/last.pt"
    before = ckpt.stat().st_mtime_ns
    reproduce.main(argv[:4] + argv[5:])  # seed 0 only
    assert ckpt.stat().st_mtime_ns == before


def test_claim_check_rejects_bad_arguments(tmp_path):
    sys.path.insert(0, ROOT)
    import reproduce

    with pytest.raises(UserError, match="--steps"):
        reproduce.main(["--steps", "0", "--out", str(tmp_path)])

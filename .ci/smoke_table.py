"""Print one table of the <slug>/runs/smoke/smoke.json files written by `make smoke-<slug>`.

Usage: python3 .ci/smoke_table.py SLUG [SLUG ...]   (standard library only; run from the root)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def row(slug: str) -> str:
    path = Path(slug) / "runs" / "smoke" / "smoke.json"
    if not path.is_file():
        return f"{slug:<22} {'MISSING':<7} (no {path})"
    rec = json.loads(path.read_text())
    batch = f"{rec.get('batch_size')}/{rec.get('paper_batch_size')}"
    return (f"{slug:<22} {'ok' if rec.get('ok') else 'FAILED':<7} {rec.get('device', '?'):<5} "
            f"{_fmt(rec.get('wall_s'), '7.1f')} {_fmt(rec.get('train_s'), '7.1f')} "
            f"{_fmt(rec.get('resume_s'), '7.1f')} {_fmt(rec.get('eval_s'), '7.1f')} "
            f"{_fmt(rec.get('peak_rss_mib'), '8.0f')} {_fmt(rec.get('cuda_max_mem_mib'), '8.0f')} "
            f"{batch:>9}  {rec.get('note', '')}")


def main(slugs: list[str]) -> int:
    print("\n== make smoke summary (paper preset, 2 steps + resume 1 + eval) ==")
    print(f"{'subproject':<22} {'result':<7} {'dev':<5} {'wall_s':>7} {'train_s':>7} "
          f"{'resume_s':>7} {'eval_s':>7} {'rss_MiB':>8} {'cuda_MiB':>8} {'batch/pap':>9}  note")
    for slug in slugs:
        print(row(slug))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

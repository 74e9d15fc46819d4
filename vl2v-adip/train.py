"""Train one method on one DomainBed leave-one-domain-out split.

    python train.py --config configs/tiny.toml --out_dir runs/demo [--field value ...] [--debug]
Methods: --method erm | kd | adip | zeroshot ; --teacher_access black_box | white_box (adip).
A mistake in the input prints one line `error: ...` and exits with status 2 (--debug: traceback).
"""

from __future__ import annotations

import json

from vl2v_adip.runtime import cli


def main(argv: list[str] | None = None) -> dict:
    from vl2v_adip.config import parse_config
    from vl2v_adip.engine import fit

    cfg = parse_config(list(argv or []))
    result = fit(cfg)
    print(json.dumps(dict(result), indent=2, default=str))
    return result


if __name__ == "__main__":
    cli(main)

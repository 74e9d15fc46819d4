"""Train one method on one DomainBed leave-one-domain-out split.

    python train.py --config configs/tiny.toml --out_dir runs/demo [--field value ...]
Methods: --method erm | kd | adip | zeroshot ; --teacher_access black_box | white_box (adip).
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str] | None = None) -> dict:
    from vl2v_adip.config import parse_config
    from vl2v_adip.engine import fit

    cfg = parse_config(sys.argv[1:] if argv is None else argv)
    result = fit(cfg)
    print(json.dumps({k: v for k, v in result.items()}, indent=2, default=str))
    return result


if __name__ == "__main__":
    main()

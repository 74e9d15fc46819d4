"""Train PairDETR (or the two-stage baseline): python train.py --config configs/tiny.toml."""

from __future__ import annotations

import sys

from pairdetr.config import parse_config
from pairdetr.engine import fit


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_config(sys.argv[1:] if argv is None else argv)
    result = fit(cfg)
    print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in result.items()})
    return result


if __name__ == "__main__":
    main()

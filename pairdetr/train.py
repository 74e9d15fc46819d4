"""Train PairDETR (or the two-stage baseline): python train.py --config configs/tiny.toml.

A mistake in the arguments or data prints one line `error: ...` and exits with status 2
(`--debug` shows the traceback); see README "Bad input".
"""

from __future__ import annotations

from pairdetr.config import parse_config
from pairdetr.engine import fit
from pairdetr.runtime import cli


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_config(list(argv or []))
    result = fit(cfg)
    print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in result.items()})
    return result


if __name__ == "__main__":
    cli(main)

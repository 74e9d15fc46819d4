"""Train PathDino with DINO + HistoRotate: `python train.py --config configs/tiny.toml`."""

from __future__ import annotations

from pathdino.config import parse_config
from pathdino.engine import fit
from pathdino.runtime import cli


def main(argv: list[str] | None = None) -> dict:
    import sys

    cfg = parse_config(sys.argv[1:] if argv is None else argv)
    return fit(cfg)


if __name__ == "__main__":
    cli(main)

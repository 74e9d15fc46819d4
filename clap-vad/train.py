"""Train CLAP: `python train.py --config configs/tiny.toml --out_dir runs/demo [--field value]`."""

from __future__ import annotations

from clap_vad.config import parse_config
from clap_vad.engine import fit
from clap_vad.runtime import cli


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_config(argv or [])
    result = fit(cfg)
    print({k: v for k, v in result.items()})
    return result


if __name__ == "__main__":
    cli(main)

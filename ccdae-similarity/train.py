"""Train the CC:DAE stand-in components (describers, likelihood models, CLIP-like baseline).

    python train.py --config configs/tiny.toml --out_dir runs/demo [--field value ...] [--debug]

A user error (bad key or value, missing data, unreadable checkpoint) prints one line
`error: ...` and exits with status 2; `--debug` shows the traceback.
"""

from __future__ import annotations

from ccdae_similarity.runtime import cli


def main(argv: list[str] | None = None) -> dict:
    from ccdae_similarity.config import parse_config
    from ccdae_similarity.engine import fit

    return fit(parse_config(argv))


if __name__ == "__main__":
    cli(main)

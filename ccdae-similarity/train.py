"""Train the CC:DAE stand-in components (describers, likelihood models, CLIP-like baseline).

    python train.py --config configs/tiny.toml --out_dir runs/demo [--field value ...]
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> dict:
    from ccdae_similarity.config import parse_config
    from ccdae_similarity.engine import fit

    cfg = parse_config(sys.argv[1:] if argv is None else argv)
    return fit(cfg)


if __name__ == "__main__":
    main()

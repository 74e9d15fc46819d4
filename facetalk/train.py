"""Train FaceTalk (or the regression baseline): python train.py --config configs/tiny.toml."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> dict:
    import sys

    from facetalk.config import parse_config
    from facetalk.engine import fit

    cfg = parse_config(sys.argv[1:] if argv is None else argv)
    result = fit(cfg)
    print({k: v for k, v in result.items()})
    return result


if __name__ == "__main__":
    main()

"""Train FaceTalk (or the regression baseline): python train.py --config configs/tiny.toml.

A user error (bad key or value, missing data, unreadable checkpoint) prints one line
`error: ...` and exits with status 2; `--debug` shows the traceback.
"""

from __future__ import annotations

from facetalk.runtime import cli


def main(argv: list[str] | None = None) -> dict:
    from facetalk.config import parse_config
    from facetalk.engine import fit

    result = fit(parse_config(argv))
    print(dict(result))
    return result


if __name__ == "__main__":
    cli(main)

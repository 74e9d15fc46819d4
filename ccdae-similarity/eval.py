"""Score similarities with CC:DAE and the baselines; correlations with ground truth / humans.

    python eval.py --ckpt runs/demo/ckpt/last.pt [--field value ...]   (fields of Config)
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str] | None = None) -> dict:
    from ccdae_similarity.config import parse_config
    from ccdae_similarity.engine import evaluate

    argv = list(sys.argv[1:] if argv is None else argv)
    if "--ckpt" not in argv or argv.index("--ckpt") + 1 >= len(argv):
        raise SystemExit("usage: eval.py --ckpt <run>/ckpt/last.pt [--field value ...]")
    i = argv.index("--ckpt")
    ckpt = argv[i + 1]
    del argv[i: i + 2]
    overrides = {k: v for k, v in zip(argv[::2], argv[1::2])}
    parse_config(argv)  # validates keys and values (unknown key = error listing valid keys)
    result = evaluate(ckpt, {k[2:].replace("-", "_"): v for k, v in overrides.items()})
    print(json.dumps({k: v for k, v in result.items()}, indent=1))
    return result


if __name__ == "__main__":
    main()

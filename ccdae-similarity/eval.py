"""Score similarities with CC:DAE and the baselines; correlations with ground truth / humans.

    python eval.py --ckpt runs/demo/ckpt/last.pt [--field value ...] [--debug]   (fields of Config)
"""

from __future__ import annotations

import json

from ccdae_similarity.runtime import ConfigError, cli


def main(argv: list[str] | None = None) -> dict:
    from ccdae_similarity.config import parse_config
    from ccdae_similarity.engine import evaluate

    argv = list(argv or [])
    if "--ckpt" not in argv or argv.index("--ckpt") + 1 >= len(argv):
        raise ConfigError("eval.py needs --ckpt <run>/ckpt/last.pt",
                          "usage: eval.py --ckpt <path> [--field value ...]")
    i = argv.index("--ckpt")
    ckpt = argv[i + 1]
    del argv[i: i + 2]
    parse_config(argv)  # validates keys and values (unknown key = error listing valid keys)
    overrides = {k[2:].replace("-", "_"): v for k, v in zip(argv[::2], argv[1::2])}
    result = evaluate(ckpt, overrides)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    cli(main)

"""Evaluate a checkpoint: python eval.py --ckpt runs/demo/ckpt/last.pt [--field value ...].

Writes <run>/eval/val.json (body/face AP and MR^-2, mMR^-2 per subset, under both evaluation
protocols) and <run>/eval/pairs.png. Only evaluation fields may be overridden (data_*, eval_*,
device); the model comes from the checkpoint. User errors: one line, exit status 2 (`--debug`).
"""

from __future__ import annotations

import json
import math

from pairdetr.config import _coerce, _field_types
from pairdetr.engine import evaluate_checkpoint
from pairdetr.runtime import ConfigError, cli

ALLOWED_PREFIXES = ("data_", "eval_", "device")


def main(argv: list[str] | None = None) -> dict:
    argv = list(argv or [])
    if "--ckpt" not in argv or argv.index("--ckpt") + 1 >= len(argv):
        raise ConfigError("eval.py needs --ckpt <run>/ckpt/last.pt",
                          "usage: eval.py --ckpt PATH [--eval_max_images N ...]")
    i = argv.index("--ckpt")
    ckpt = argv[i + 1]
    del argv[i:i + 2]
    if len(argv) % 2:
        raise ConfigError(f"expected --field value pairs, got {argv}")
    types, overrides = _field_types(), {}
    for flag, value in zip(argv[::2], argv[1::2]):
        name = flag[2:].replace("-", "_") if flag.startswith("--") else flag
        if name not in types or not name.startswith(ALLOWED_PREFIXES):
            valid = sorted(k for k in types if k.startswith(ALLOWED_PREFIXES))
            raise ConfigError(f"eval.py cannot set {flag!r}", f"valid: {', '.join(valid)}")
        overrides[name] = _coerce(name, value, types[name])
    result = evaluate_checkpoint(ckpt, overrides)
    print(json.dumps({k: (None if isinstance(v, float) and math.isnan(v) else v)
                      for k, v in result.items()}, indent=2))
    return result


if __name__ == "__main__":
    cli(main)

"""`make bench-ccdae-similarity`: CC:DAE scoring throughput, printed with its reference and
the ratio, all measured in this one run (random-init tiny models: cost does not depend on
training)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> dict:
    import torch

    from ccdae_similarity.benchmark import run_benchmark
    from ccdae_similarity.config import parse_config

    argv = sys.argv[1:] if argv is None else argv
    cfg = parse_config(["--config", str(Path(__file__).parent / "configs" / "tiny.toml"), *argv])
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    rows = run_benchmark(cfg)
    print(f"{'figure':<58} {'value':>10} {'reference':>10} {'ratio':>7}")
    for r in rows:
        print(f"{r['figure']:<58} {r['value']:>10.3f} {r['reference']:>10.3f} {r['ratio']:>7.2f}")
    out = Path("runs") / "bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    return {"rows": rows}


if __name__ == "__main__":
    main()

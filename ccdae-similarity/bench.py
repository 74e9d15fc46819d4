"""`make bench-ccdae-similarity`: CC:DAE scoring throughput, printed with its reference and
the ratio, all measured in this one run (random-init tiny models: cost does not depend on
training).

    python bench.py [--field value ...]          # CPU figures at the tiny preset
    python bench.py --gpu [--json PATH]          # CUDA figures at the paper preset (make gpu-check)
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).parent


def _gpu(json_path: str) -> dict:
    import torch

    from ccdae_similarity.benchmark import run_gpu_benchmark
    from ccdae_similarity.config import parse_config

    if not torch.cuda.is_available():
        print("no CUDA: GPU figures skipped")
        return {}
    figures = run_gpu_benchmark(parse_config(["--config", str(ROOT / "configs" / "paper.toml")]))
    print(f"GPU figures ({torch.cuda.get_device_name()}, paper preset):")
    for name, value in figures.items():
        print(f"  {name:<28} {value:10.3f}")
    if json_path:
        Path(json_path).write_text(json.dumps(figures, indent=2))
    return figures


def main(argv: list[str] | None = None) -> dict:
    argv = list(argv or [])
    if "--gpu" in argv:
        argv.remove("--gpu")
        json_path = ""
        if "--json" in argv:
            i = argv.index("--json")
            json_path = argv[i + 1]
            del argv[i:i + 2]
        return _gpu(json_path)

    import torch

    from ccdae_similarity.benchmark import run_benchmark
    from ccdae_similarity.config import parse_config

    cfg = parse_config(["--config", str(ROOT / "configs" / "tiny.toml"), *argv])
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
    from ccdae_similarity.runtime import cli

    cli(main)

"""Throughput: rays/s for training and rendering per family, recipe vs baseline (ratio ~1.0
expected: the recipe only changes the activation), and our Nerfacto-style step vs nerfstudio's
stock Nerfacto step on the same rays (CPU torch fallbacks; needs the [nerfstudio] extra).

    python bench.py [--rays 512] [--repeats 5] [--json out.json]
    python bench.py --gpu [--json out.json]   # CUDA figures (families at 4096 rays x 192
                                              # samples, nerfacc's CUDA scans, nerfstudio)
"""

from __future__ import annotations

from alpha_invariance.runtime import cli


def main(argv: list[str] | None = None) -> dict:
    import json
    from pathlib import Path

    import torch

    from alpha_invariance.benchmark import gpu_benchmark, run_benchmark
    from alpha_invariance.runtime import ArgParser

    parser = ArgParser(description=__doc__)
    parser.add_argument("--rays", type=int, default=512)
    parser.add_argument("--samples", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--gpu", action="store_true", help="CUDA figures only (issue 24)")
    parser.add_argument("--json", default="", help="also write the result to this path")
    args = parser.parse_args(argv)
    if args.gpu and not torch.cuda.is_available():
        print("no CUDA: GPU figures skipped")
        return {}
    result = (gpu_benchmark() if args.gpu else
              run_benchmark(args.rays, args.samples, args.repeats, args.device))
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    cli(main)

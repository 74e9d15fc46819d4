"""Throughput: rays/s for training and rendering per family, recipe vs baseline (ratio ~1.0
expected: the recipe only changes the activation), and our Nerfacto-style step vs nerfstudio's
stock Nerfacto step on the same rays (CPU torch fallbacks; needs the [nerfstudio] extra).

    python bench.py [--rays 512] [--repeats 5]
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> dict:
    import argparse
    import json

    from alpha_invariance.benchmark import run_benchmark

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rays", type=int, default=512)
    parser.add_argument("--samples", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    result = run_benchmark(args.rays, args.samples, args.repeats, args.device)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()

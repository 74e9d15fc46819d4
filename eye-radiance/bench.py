"""Throughput: training rays per second (official step: cornea, proposal sampling, nerfacto
field, texture + rotation prior, backward) and the cost of the cornea step relative to the
scene query, tiny vs paper preset. `--gpu`: the same on CUDA with nerfstudio's CUDA paths
(tiny-cuda-nn when installed), written to --json.

    python bench.py [--rays 2048] [--repeats 3] [--gpu] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from eye_radiance.benchmark import HEADER, bench_capture, bench_preset, row

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rays", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gpu", action="store_true")
    parser.add_argument("--json", default="")
    args = parser.parse_args(argv)
    if args.gpu and not torch.cuda.is_available():
        print("no CUDA: GPU figures skipped")
        return {}
    device = torch.device("cuda" if args.gpu else "cpu")
    capture = bench_capture(HERE / "runs" / "bench_capture")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {device}")
    print(HEADER)
    out = {}
    for name in ("tiny", "paper"):
        repeats = args.repeats if name == "tiny" or args.gpu else 1  # paper: slow on CPU
        out[name] = bench_preset(HERE / "configs" / f"{name}.toml", args.rays, repeats, device,
                                 capture)
        print(row(name, args.rays, out[name]))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"device": str(device), **out}, indent=2))
    return out


if __name__ == "__main__":
    main()

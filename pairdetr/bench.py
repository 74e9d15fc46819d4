"""Throughput: PairDETR vs the official model definition (re-stated) on the same input.

Prints inference images/s and training-step time at a fixed resolution (CPU, and CUDA when
present), as ratios ours / official measured in one run, then the pair matcher's time for
100 / 300 / 1500 queries (vs. a single-box matcher on the same problem).

  python bench.py                 # paper architecture (ResNet-50, 6+6 layers, 1500 queries), 384 px
  python bench.py --small         # the tiny preset's architecture (seconds)
  python bench.py --gpu [--json PATH]   # CUDA figures only, paper architecture at 800 x 1216
                                        # (a CrowdHuman validation size); <= 30 s on an H200
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from pairdetr.losses import SetCriterion
from pairdetr.matching import PairHungarianMatcher
from pairdetr.model import ModelSpec, PairDETR, official_to_ours
from pairdetr.official_reference import official_from_pairdetr

PAPER = ModelSpec(backbone="resnet50", dim=256, ffn_dim=1024, heads=8, enc_layers=6, dec_layers=6,
                  num_queries=1500, num_levels=4, points=4, dropout=0.0)
SMALL = ModelSpec(backbone="tiny", backbone_width=16, dim=64, ffn_dim=128, heads=4, enc_layers=1,
                  dec_layers=2, num_queries=20, num_levels=2, points=2, dropout=0.0)
WEIGHTS = {"loss_ce": 2.0, "loss_bbox": 5.0, "loss_giou": 2.0}


def _timeit(fn, repeats: int, device: torch.device) -> float:
    """Median wall time of `repeats` calls after one warm-up (robust to a shared machine)."""
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _targets(n: int, device: torch.device, gen: torch.Generator) -> list[dict]:
    centre = torch.rand(n, 2, generator=gen) * 0.8 + 0.1
    size = torch.rand(n, 2, generator=gen) * 0.2 + 0.05
    boxes = torch.cat([centre, size, centre - torch.tensor([0.0, 0.3]) * size, size / 4], 1)
    return [{"boxes": boxes.to(device), "labels": torch.randint(0, 2, (n,), generator=gen).to(device)}]


def bench_models(spec: ModelSpec, size: int | tuple[int, int], repeats: int,
                 device: torch.device) -> dict:
    torch.manual_seed(0)
    ours = PairDETR(spec).to(device)
    official = official_from_pairdetr(ours).to(device)
    height, width = (size, size) if isinstance(size, int) else size
    x = torch.randn(1, 3, height, width, device=device)
    criterion = SetCriterion(PairHungarianMatcher(), WEIGHTS)
    targets = _targets(20, device, torch.Generator().manual_seed(0))

    def infer(model, official_layout: bool):
        model.eval()
        with torch.no_grad():
            return model(x) if official_layout else model(x, aux=False)

    def train(model, official_layout: bool):
        model.train()
        out = model(x) if official_layout else model(x, aux=False)
        if official_layout:
            out = {"pred_logits": out["logits"], "pred_boxes": official_to_ours(out["pred_boxes"])}
        loss = criterion(out, targets)["loss"]
        loss.backward()
        model.zero_grad(set_to_none=True)

    result = {}
    for name, fn in (("infer", infer), ("train", train)):
        t_ours = _timeit(lambda fn=fn: fn(ours, False), repeats, device)
        t_off = _timeit(lambda fn=fn: fn(official, True), repeats, device)
        result[name] = (t_ours, t_off)
    return result


def bench_matcher(queries: int, targets: int = 30, repeats: int = 21) -> tuple[float, float]:
    gen = torch.Generator().manual_seed(queries)
    tgt = _targets(targets, torch.device("cpu"), gen)
    out = {"pred_logits": torch.randn(1, queries, 3, generator=gen),
           "pred_boxes": torch.rand(1, queries, 8, generator=gen)}
    matcher = PairHungarianMatcher()
    pair = _timeit(lambda: matcher(out, tgt), repeats, torch.device("cpu"))
    single_out = {"pred_logits": out["pred_logits"], "pred_boxes": out["pred_boxes"][..., :4]}
    single_tgt = [{"boxes": tgt[0]["boxes"][:, :4], "labels": tgt[0]["labels"]}]
    single = _timeit(lambda: matcher(single_out, single_tgt), repeats, torch.device("cpu"))
    return pair, single


def gpu_figures(repeats: int = 5, size: tuple[int, int] = (800, 1216)) -> dict:
    """The CUDA figures of `make gpu-check`: paper architecture, ours vs the official definition."""
    device = torch.device("cuda")
    torch.cuda.reset_peak_memory_stats(device)
    res = bench_models(PAPER, size, repeats, device)
    (ti, to), (tt, tto) = res["infer"], res["train"]
    return {"infer_img_per_s": 1 / ti, "train_step_s": tt, "infer_ratio_ours_official": to / ti,
            "train_ratio_ours_official": tt / tto, "infer_img_per_s_official": 1 / to,
            "train_step_s_official": tto, "size": list(size), "repeats": repeats,
            "device": torch.cuda.get_device_name(device),
            "cuda_max_mem_mib": torch.cuda.max_memory_allocated(device) / 2**20}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", action="store_true", help="tiny architecture instead of paper")
    parser.add_argument("--size", type=int, default=0, help="square input side (default 384/96)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gpu", action="store_true", help="CUDA figures only (make gpu-check)")
    parser.add_argument("--json", default="", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.gpu:
        if not torch.cuda.is_available():
            print("no CUDA: GPU figures skipped")
            return {}
        report = gpu_figures()
        print(json.dumps(report, indent=2))
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=2))
        return report
    spec, size = (SMALL, args.size or 96) if args.small else (PAPER, args.size or 384)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    report: dict = {"spec": str(spec), "size": size}
    print(f"model: {'tiny' if args.small else 'paper (ResNet-50, 6+6 layers, 1500 queries)'}, "
          f"input 1x3x{size}x{size}, {args.repeats} repeats after 1 warm-up (median)")
    print(f"{'device':8s} {'measure':26s} {'ours':>10s} {'official':>10s} {'ours/official':>14s}")
    for device in devices:
        res = bench_models(spec, size, args.repeats, device)
        (ti, to), (tt, tto) = res["infer"], res["train"]
        print(f"{device.type:8s} {'inference images/s':26s} {1 / ti:10.3f} {1 / to:10.3f} "
              f"{(1 / ti) / (1 / to):14.3f}")
        print(f"{device.type:8s} {'train step s (fwd+bwd+loss)':26s} {tt:10.3f} {tto:10.3f} "
              f"{tt / tto:14.3f}")
        report[device.type] = {"infer_img_per_s": [1 / ti, 1 / to], "train_step_s": [tt, tto]}
    print(f"\n{'queries':>8s} {'pair matcher ms':>16s} {'single-box ms':>14s} {'pair/single':>12s}"
          "   (30 targets, scipy linear_sum_assignment, CPU)")
    report["matcher_ms"] = {}
    for q in (100, 300, 1500):
        pair, single = bench_matcher(q)
        report["matcher_ms"][q] = [pair * 1e3, single * 1e3]
        print(f"{q:8d} {pair * 1e3:16.2f} {single * 1e3:14.2f} {pair / single:12.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()

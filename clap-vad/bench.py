"""`make bench-clap-vad`: federated vs centralised training time, and Flower's overhead.

All figures come from one process and one data set (configs/tiny.toml, `--field value` overrides);
times are the best of 3 runs (Ray: one run):
  central         one participant holding every video, same rounds x local epochs
  plain FedAvg    the same participants and updates, averaged by a direct in-process loop
  Flower inproc   Flower simulation runtime (LinkState, InMemoryGrid, strategy), no Ray
  Flower ray      flwr.simulation.run_simulation with Ray actors (skip with --skip_ray)

`python bench.py --gpu [--json PATH]`: the CUDA figures at paper sizes instead (I3D 2048-d,
10 crops, batch 128, the C2FPL_ucf scorer): local-training and scoring throughput on CUDA, the
same training on CPU as the reference ratio, and the peak CUDA memory; without CUDA it prints
`no CUDA: GPU figures skipped` and exits 0.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
import time

import numpy as np
import torch

from clap_vad.builders import build_model, build_participant, load_data, participant_indices
from clap_vad.config import parse_config
from clap_vad.engine import fit


def plain_fedavg(cfg) -> float:
    """Reference: the same local updates, aggregated by a plain loop; returns seconds."""
    num = len(participant_indices(cfg, load_data(cfg)[0]))
    parts = [build_participant(cfg, p) for p in range(num)]
    start = time.perf_counter()
    stats = [p.normal_statistics() for p in parts]
    labels = [p.snippet_labels(stats) for p in parts]
    global_state = build_model(cfg).state_dict()
    for r in range(1, cfg.steps + 1):
        states, weights = [], []
        for p, y in zip(parts, labels):
            model = build_model(cfg)
            model.load_state_dict(global_state)
            weights.append(p.train(model, y, r, torch.device("cpu"))["num-examples"])
            states.append(model.state_dict())
        total = sum(weights)
        global_state = {k: sum(w / total * s[k] for w, s in zip(weights, states))
                        for k in global_state}
    return time.perf_counter() - start


def timed_fit(cfg) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        fit(dataclasses.replace(cfg, out_dir=tmp))
        return time.perf_counter() - start


def _paper_participant(num_videos: int, snippets: int, epochs: int):
    """One participant holding random I3D-sized videos [T, 10, 2048], paper optimisation."""
    from clap_vad.data import VideoSet
    from clap_vad.participant import LocalOptim, Participant

    rng = np.random.default_rng(0)
    videos = [rng.random((snippets, 10, 2048), dtype=np.float32) for _ in range(num_videos)]
    vs = VideoSet(videos, [f"v{i}" for i in range(num_videos)], np.zeros(num_videos, int),
                  np.zeros(num_videos, int))
    return Participant(vs, LocalOptim(epochs=epochs, batch_size=128, lr=0.01, shuffle=False), 0, 0)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def gpu_figures(device: str = "cuda", num_videos: int = 32, snippets: int = 128,
                repeats: int = 5) -> dict:
    """Paper-size throughput on `device` (CUDA), and the same epoch on CPU as the reference."""
    from clap_vad.model import ScorerConfig, SnippetScorer
    from clap_vad.participant import score_snippets

    dev, cpu = torch.device(device), torch.device("cpu")
    part = _paper_participant(num_videos, snippets, epochs=1)
    labels = (np.arange(part.num_snippets) % 7 == 0).astype(np.float32)
    model = SnippetScorer(ScorerConfig()).to(dev)
    part.train(model, labels, 0, dev)  # warm-up: kernels, allocator
    _sync(dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    start = time.perf_counter()
    for r in range(repeats):
        part.train(model, labels, r + 1, dev)
    _sync(dev)
    train = repeats * part.num_snippets / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(repeats):
        score_snippets(model, part.x, dev)
    _sync(dev)
    score = repeats * part.num_snippets / (time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None
    cpu_model = SnippetScorer(ScorerConfig())
    part.train(cpu_model, labels, 0, cpu)  # warm-up
    start = time.perf_counter()
    part.train(cpu_model, labels, 1, cpu)
    cpu_train = part.num_snippets / (time.perf_counter() - start)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    return {"device": name, "cuda_train_snippets_per_s": train,
            "cpu_train_snippets_per_s": cpu_train, "cuda_vs_cpu_train": train / cpu_train,
            "cuda_score_snippets_per_s": score, "cuda_max_mem_mib": peak,
            "snippets": part.num_snippets, "batch_size": 128, "cpu_threads": torch.get_num_threads()}


def main_gpu(argv: list[str]) -> dict:
    json_path = argv[argv.index("--json") + 1] if "--json" in argv else None
    if not torch.cuda.is_available():
        print("no CUDA: GPU figures skipped")
        return {}
    figures = gpu_figures()
    print("clap-vad GPU figures (paper sizes: 2048-d, 10 crops, batch 128, C2FPL_ucf scorer)")
    for key, value in figures.items():
        print(f"  {key:<28} {value:.4g}" if isinstance(value, float) else f"  {key:<28} {value}")
    if json_path:
        with open(json_path, "w") as f:
            json.dump(figures, f, indent=2)
    return figures


def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--gpu" in argv:
        return main_gpu(argv)
    skip_ray = "--skip_ray" in argv
    argv = [a for a in argv if a != "--skip_ray"]
    torch.set_num_threads(1)
    cfg = parse_config(["--config", "configs/tiny.toml", *argv])
    cfg = dataclasses.replace(cfg, eval_every=cfg.steps, device="cpu")  # time training only
    load_data(cfg)
    for p in range(len(participant_indices(cfg, load_data(cfg)[0]))):
        build_participant(cfg, p)  # warm caches and torch's first-step overheads for every path
    plain_fedavg(dataclasses.replace(cfg, steps=1))
    inproc = dataclasses.replace(cfg, fl_backend="inprocess")
    timed_fit(dataclasses.replace(inproc, steps=1))  # one-time imports of Flower's runtime
    rounds, repeats = cfg.steps, 3  # best of 3: the CPU may be shared with other jobs
    t = {"central": min(timed_fit(dataclasses.replace(cfg, mode="central")) for _ in range(repeats)),
         "plain FedAvg": min(plain_fedavg(cfg) for _ in range(repeats)),
         "Flower inproc": min(timed_fit(inproc) for _ in range(repeats))}
    one_round = min(timed_fit(dataclasses.replace(inproc, steps=1)) for _ in range(repeats))
    per_round = {k: v / rounds for k, v in t.items()}
    per_round["Flower inproc"] = (t["Flower inproc"] - one_round) / (rounds - 1)  # marginal
    if not skip_ray:  # Ray: fresh actors per run, so start-up is part of every run
        t["Flower ray"] = timed_fit(dataclasses.replace(cfg, fl_backend="ray"))
        per_round["Flower ray"] = t["Flower ray"] / rounds
    print(f"\nclap-vad bench ({cfg.config_name}: {rounds} rounds x {cfg.local_epochs} local epochs, "
          f"{cfg.split} split, CPU, 1 torch thread, one process)")
    print(f"{'path':<15}{'total s':>9}{'s/round':>9}{'total/central':>15}{'total/plain':>13}"
          f"{'round/plain':>13}")
    for name, sec in t.items():
        print(f"{name:<15}{sec:>9.2f}{per_round[name]:>9.3f}{sec / t['central']:>15.2f}"
              f"{sec / t['plain FedAvg']:>13.2f}{per_round[name] / per_round['plain FedAvg']:>13.2f}")
    print(f"Flower inproc start-up + final evaluation: {one_round - per_round['Flower inproc']:.2f} s "
          "(1-round run minus the marginal round time); Flower ray s/round includes Ray start-up")
    return {"total_s": t, "per_round_s": per_round}


if __name__ == "__main__":
    main()

"""`make bench-clap-vad`: federated vs centralised training time, and Flower's overhead.

All figures come from one process and one data set (configs/tiny.toml, `--field value` overrides);
times are the best of 3 runs (Ray: one run):
  central         one participant holding every video, same rounds x local epochs
  plain FedAvg    the same participants and updates, averaged by a direct in-process loop
  Flower inproc   Flower simulation runtime (LinkState, InMemoryGrid, strategy), no Ray
  Flower ray      flwr.simulation.run_simulation with Ray actors (skip with --skip_ray)
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import time

import torch

from clap_vad.config import parse_config
from clap_vad.engine import build_model, build_participant, fit, load_data, participant_indices


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


def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
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

"""`make smoke-facetalk`: the paper preset at the paper's sizes, run for real.

Writes synthetic talking sequences in the paper's on-disk layout (16 kHz audio.wav, [T, 200]
NPHM expression codes, 1312-d identity codes), a random-init wav2vec2-base folder (the paper's
encoder architecture, no pretrained weights here) and an NPHM-format head folder (TorchScript
deformer + neutral mesh of the procedural head). Then trains with configs/paper.toml for 2
optimiser steps, resumes for 1 more and evaluates on one held-out sequence, through the real CLIs
(train.py / eval.py as subprocesses). Only the data/weight folders, the step count, the
checkpoint/log/eval cadence, the evaluation size, the device and (when asked) the batch size are
overridden. Writes <out>/smoke.json with wall times and peak memory.

    python smoke.py [--device auto|cpu|cuda] [--batch_size N] [--out runs/smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import tomllib
import torch

ROOT = Path(__file__).resolve().parent
PAPER = ROOT / "configs" / "paper.toml"


def _child(cmd: list[str]) -> tuple[float, float, str]:
    """Run one CLI; (seconds, its peak RSS in MiB, its output). Raises on failure."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[1:3])} exited {proc.returncode}:\n{out[-3000:]}")
    return time.perf_counter() - start, usage.ru_maxrss / 1024, out  # ru_maxrss: KiB


def _cuda_peak(run: Path) -> float | None:
    path = run / "metrics.jsonl"
    values = [json.loads(line).get("cuda_max_mem_mib") for line in path.read_text().splitlines()
              if line.strip()] if path.is_file() else []
    values = [v for v in values if v is not None]
    return max(values) if values else None


class Deformer(torch.nn.Module):
    """Stand-in with the interface of NPHM's deformation network: offsets [N, 3] from the
    points [N, 3], identity code [I] and expression code [E] (a fixed random linear map)."""

    def __init__(self, exp_dim: int, id_dim: int) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.w_exp = torch.nn.Parameter(torch.randn(exp_dim, 3, generator=gen) * 1e-3)
        self.w_id = torch.nn.Parameter(torch.randn(id_dim, 3, generator=gen) * 1e-4)

    def forward(self, points: torch.Tensor, z_id: torch.Tensor,
                z_exp: torch.Tensor) -> torch.Tensor:
        shift = z_exp @ self.w_exp + z_id @ self.w_id  # [3]
        return torch.zeros_like(points) + shift * (1.0 + points[:, 1:2])  # [N, 3]


def write_inputs(root: Path, paper: dict, num_train: int = 8, num_test: int = 1) -> dict:
    """Data, encoder and head folders at the paper's sizes; returns the override values."""
    import numpy as np
    from scipy.io import wavfile
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    from facetalk.data import synthetic_sequences
    from facetalk.head import ProceduralHead

    sr, fps = paper["data_sample_rate"], paper["data_fps"]
    exp_dim, id_dim = paper["data_exp_dim"], paper["data_id_dim"]
    seconds = paper["data_clip_frames"] / fps + 1.0  # every sequence holds one training window
    data = root / "data"
    names = {"train": [], "test": []}
    for split, num in (("train", num_train), ("test", num_test)):
        for seq in synthetic_sequences(num, 2, seconds, sr, fps, exp_dim, id_dim, 0, split):
            subject = f"subject{seq.speaker}"
            seq_dir = data / subject / f"{split}_{len(names[split]):03d}"
            seq_dir.mkdir(parents=True)
            np.save(data / subject / "identity.npy", seq.id_code)
            np.save(seq_dir / "expression_codes.npy", seq.codes)
            wavfile.write(seq_dir / "audio.wav", sr, seq.audio)
            names[split].append(f"{subject}/{seq_dir.name}")
    (data / "splits").mkdir()
    for split in ("train", "val", "test"):
        (data / "splits" / f"{split}.txt").write_text(
            "\n".join(names["train" if split == "train" else "test"]) + "\n")
    encoder = root / "wav2vec2-base-random"  # wav2vec2-base sizes: 768 wide, 12 layers
    Wav2Vec2Model(Wav2Vec2Config()).save_pretrained(encoder)
    head = ProceduralHead(id_dim, exp_dim)
    head_dir = root / "nphm_head"
    head_dir.mkdir()
    torch.jit.script(Deformer(exp_dim, id_dim)).save(str(head_dir / "deformer.pt"))
    np.savez(head_dir / "neutral.npz", vertices=head.template_vertices.numpy(),
             faces=head.faces.numpy(), lip_indices=head.lip_indices.numpy(),
             upper_indices=head.upper_indices.numpy(), mouth_pair=head.mouth_pair.numpy())
    return {"data_root": str(data), "audio_encoder_path": str(encoder),
            "head_path": str(head_dir)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch_size", type=int, default=0, help="0 = the paper preset's")
    parser.add_argument("--out", default="runs/smoke")
    args = parser.parse_args(argv)
    paper = tomllib.loads(PAPER.read_text())
    out = (ROOT / args.out).resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    run = out / "run"
    batch = args.batch_size or paper["batch_size"]
    record = {"subproject": "facetalk", "device": args.device, "ok": False, "batch_size": batch,
              "paper_batch_size": paper["batch_size"],
              "note": "synthetic sequences in the NPHM layout; random-init wav2vec2-base and "
                      "NPHM-format head stand-ins; eval on 1 sequence"}
    try:
        t0 = time.perf_counter()
        paths = write_inputs(out / "inputs", paper)
        prep_s = time.perf_counter() - t0
        common = [sys.executable, "train.py", "--config", str(PAPER), "--out_dir", str(run),
                  "--device", args.device, "--save_every", "2", "--log_every", "1",
                  "--eval_every", "0", "--eval_sequences", "1", "--batch_size", str(batch)]
        common += [x for k, v in paths.items() for x in (f"--{k}", v)]
        train_s, rss_train, _ = _child(common + ["--steps", "2"])
        resume_s, rss_resume, log = _child(common + ["--steps", "3"])
        if "resumed from" not in log or "at step 2" not in log:
            raise RuntimeError(f"the second run did not resume at step 2:\n{log[-2000:]}")
        eval_s, rss_eval, _ = _child([sys.executable, "eval.py", "--ckpt",
                                      str(run / "ckpt" / "last.pt"), "--device", args.device])
        record.update(ok=True, prep_s=round(prep_s, 1), train_s=round(train_s, 1),
                      resume_s=round(resume_s, 1), eval_s=round(eval_s, 1),
                      wall_s=round(train_s + resume_s + eval_s, 1),
                      peak_rss_mib=round(max(rss_train, rss_resume, rss_eval)),
                      cuda_max_mem_mib=_cuda_peak(run))
        if record["cuda_max_mem_mib"] is not None:
            record["device"] = "cuda"
        elif args.device == "auto":
            record["device"] = "cpu"
    except RuntimeError as err:
        record["error"] = str(err)
        print(err, file=sys.stderr)
    (out / "smoke.json").write_text(json.dumps(record, indent=2))
    print("smoke:", json.dumps({k: v for k, v in record.items() if k != "error"}))
    if not record["ok"]:
        raise SystemExit(1)
    return record


if __name__ == "__main__":
    main()

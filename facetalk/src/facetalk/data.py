"""Data: paired (audio, per-frame expression codes, identity code) sequences.

Shapes: S audio samples, T frames, E expression-code size, I identity-code size, B batch.

* `synthetic_sequences`: a synthetic talking-head set. Random "sentences" of phoneme-like
  segments (vowels = harmonic tones shaped by two formants, fricatives = high-passed noise,
  silences) give the audio; the procedural head's mouth codes follow it (jaw opens on voiced
  segments with the vowel's openness, lips stretch/round with F2, the upper lip lifts on
  fricatives; speaker-specific gain and coarticulation smoothing), while brows, blinks and the
  remaining components move stochastically and independently of the audio (so a deterministic
  regressor can only predict their mean: the one-to-many part the diffusion model should cover).
* `load_nphm_talk`: the paper's data layout from disk (see README for the folder tree).
* `sample_batch`: random fixed-length crops, deterministic given a torch.Generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d

from .audio import load_wav, num_frames
from .head import BLINK, BROW, JAW, LIP_ROUND, LIP_STRETCH, NUM_NAMED, UPPER_LIP
from .runtime import ConfigError, DataError, MissingPathError

# vowel: (F1 Hz, F2 Hz, jaw openness, lip spread, lip rounding)
VOWELS = {
    "a": (800, 1200, 1.0, 0.2, 0.0), "e": (500, 1900, 0.55, 0.6, 0.0),
    "i": (300, 2300, 0.25, 1.0, 0.0), "o": (500, 900, 0.6, 0.0, 0.8),
    "u": (320, 800, 0.3, 0.0, 1.0),
}


@dataclass
class Sequence:
    audio: np.ndarray  # [S] float32 mono at the configured rate
    codes: np.ndarray  # [T, E] float32 expression codes
    id_code: np.ndarray  # [I] float32 identity code
    speaker: int
    name: str


def _speaker_styles(num: int, id_dim: int, exp_dim: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(10_000 + seed)
    return [{"jaw_gain": rng.uniform(0.6, 1.2), "lip_gain": rng.uniform(0.6, 1.2),
             "smooth": rng.uniform(0.8, 2.0), "f0": rng.uniform(100, 220),
             "id_code": rng.normal(0, 1, id_dim).astype(np.float32),
             "offset": rng.normal(0, 0.15, exp_dim).astype(np.float32)} for _ in range(num)]


def _segments(rng: np.random.Generator, seconds: float) -> list[tuple[str, str, float]]:
    """A random sentence: (kind, vowel, duration) with kind in vowel|fric|sil."""
    out, total = [("sil", "", rng.uniform(0.1, 0.3))], 0.0
    total = out[0][2]
    while total < seconds:
        kind = rng.choice(["vowel", "fric", "sil"], p=[0.55, 0.2, 0.25])
        dur = {"vowel": rng.uniform(0.08, 0.25), "fric": rng.uniform(0.05, 0.12),
               "sil": rng.uniform(0.05, 0.3)}[kind]
        out.append((str(kind), str(rng.choice(list(VOWELS))), dur))
        total += dur
    return out


def _render_audio(segs, rng, sr: int, f0_base: float) -> tuple[np.ndarray, np.ndarray]:
    """Waveform [S] and a per-sample segment index [S]."""
    pieces, seg_idx = [], []
    for i, (kind, vowel, dur) in enumerate(segs):
        n = int(dur * sr)
        t = np.arange(n) / sr
        ramp = np.minimum(1, np.minimum(t, dur - t) / 0.015).clip(0, 1)  # 15 ms attack/decay
        if kind == "vowel":
            f1, f2 = VOWELS[vowel][:2]
            f0 = f0_base * rng.uniform(0.9, 1.1)
            harm = np.arange(1, int(4000 / f0))
            amp = 1 / (1 + ((harm * f0 - f1) / 90) ** 2) + 0.7 / (1 + ((harm * f0 - f2) / 120) ** 2)
            phase = rng.uniform(0, 2 * np.pi, len(harm))
            wave = (amp[:, None] * np.sin(2 * np.pi * f0 * harm[:, None] * t + phase[:, None]))
            wave = 0.5 * wave.sum(0) / amp.sum()
        elif kind == "fric":
            wave = 0.12 * np.diff(rng.normal(size=n + 1))
        else:
            wave = 0.003 * rng.normal(size=n)
        pieces.append((wave * ramp).astype(np.float32))
        seg_idx.append(np.full(n, i))
    return np.concatenate(pieces), np.concatenate(seg_idx)


def _events(rng, frames: int, fps: int, rate: float, width_s: float) -> np.ndarray:
    """Sum of random Gaussian bumps (brow raises, blinks) at Poisson times: [T]."""
    track = np.zeros(frames, np.float32)
    count = rng.poisson(rate * frames / fps)
    t = np.arange(frames)
    for center in rng.uniform(0, frames, count):
        track += rng.uniform(0.6, 1.0) * np.exp(-0.5 * ((t - center) / (width_s * fps)) ** 2)
    return track.clip(0, 1.2)


def synthetic_sequence(index: int, speaker: int, style: dict, seconds: float, sr: int, fps: int,
                       exp_dim: int, seed: int) -> Sequence:
    rng = np.random.default_rng([seed, index])
    segs = _segments(rng, seconds)
    wave, seg_of_sample = _render_audio(segs, rng, sr, style["f0"])
    wave = wave[: int(seconds * sr)]
    seg_of_sample = seg_of_sample[: len(wave)]
    frames = num_frames(len(wave), sr, fps)
    centers = ((np.arange(frames) + 0.5) * sr / fps).astype(int).clip(0, len(wave) - 1)
    codes = np.zeros((frames, exp_dim), np.float32)
    for f, c in enumerate(centers):
        kind, vowel, _ = segs[seg_of_sample[c]]
        if kind == "vowel":
            _, _, openness, spread, rounding = VOWELS[vowel]
            codes[f, JAW] = style["jaw_gain"] * openness
            codes[f, LIP_STRETCH] = style["lip_gain"] * spread
            codes[f, LIP_ROUND] = style["lip_gain"] * rounding
        elif kind == "fric":
            codes[f, JAW], codes[f, UPPER_LIP] = 0.15 * style["jaw_gain"], 1.0
    mouth = [JAW, LIP_STRETCH, LIP_ROUND, UPPER_LIP]
    codes[:, mouth] = gaussian_filter1d(codes[:, mouth], style["smooth"], axis=0)  # coarticulation
    codes[:, BROW] = _events(rng, frames, fps, rate=0.5, width_s=0.25)
    codes[:, BLINK] = _events(rng, frames, fps, rate=0.4, width_s=0.06)
    if exp_dim > NUM_NAMED:  # free components: slow AR(1) noise around a speaker offset
        free = rng.normal(0, 1, (frames, exp_dim - NUM_NAMED))
        free = gaussian_filter1d(free, 4.0, axis=0) * 2.0 * 0.3
        codes[:, NUM_NAMED:] = free + style["offset"][NUM_NAMED:]
    codes += rng.normal(0, 0.01, codes.shape).astype(np.float32)
    return Sequence(wave.astype(np.float32), codes, style["id_code"], speaker,
                    f"synthetic/s{speaker}/seq{index:04d}")


def synthetic_sequences(num: int, num_speakers: int, seconds: float, sr: int, fps: int,
                        exp_dim: int, id_dim: int, seed: int, split: str = "train") -> list:
    """`num` sequences cycling over `num_speakers` speakers; `split` picks disjoint sentences."""
    styles = _speaker_styles(num_speakers, id_dim, exp_dim, seed)
    offset = {"train": 0, "val": 1_000_000, "test": 2_000_000}[split]
    return [synthetic_sequence(offset + i, i % num_speakers, styles[i % num_speakers], seconds,
                               sr, fps, exp_dim, seed) for i in range(num)]


TREE_HINT = "expected <data_root>/<subject>/identity.npy and <subject>/<sequence>/{audio.wav, " \
            "expression_codes.npy}, README 'Data layout'"


def _load_npy(path: Path) -> np.ndarray:
    """A numeric .npy array as float32, finite; DataError for damaged or non-numeric files."""
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError, MemoryError) as err:  # damaged header or data
        raise DataError(f"{path} is not a readable .npy array ({type(err).__name__})",
                        TREE_HINT) from err
    if not np.issubdtype(array.dtype, np.number):
        raise DataError(f"{path} holds {array.dtype} values, not numbers", TREE_HINT)
    array = array.astype(np.float32)
    if not np.all(np.isfinite(array)):
        raise DataError(f"{path} holds NaN or infinite values", TREE_HINT)
    return array


def load_nphm_talk(root: str | Path, split: str, sr: int, fps: int, exp_dim: int,
                   id_dim: int) -> list[Sequence]:
    """Read the paper's layout (audio + per-frame NPHM expression codes + identity codes):

        <data_root>/<subject>/identity.npy              # [I] NPHM identity code
        <data_root>/<subject>/<sequence>/audio.wav      # speech, resampled to mono 16 kHz
        <data_root>/<subject>/<sequence>/expression_codes.npy  # [T, E] codes at fps
        <data_root>/splits/{train,val,test}.txt         # optional "<subject>/<sequence>" lines
    """
    root = Path(root)
    if not root.is_dir():
        raise MissingPathError(f"data_root {str(root)!r} is not a folder", TREE_HINT)
    split_file = root / "splits" / f"{split}.txt"
    if split_file.is_file():
        try:
            names = [ln.strip() for ln in split_file.read_text(encoding="utf-8").splitlines()
                     if ln.strip()]
        except UnicodeDecodeError as err:
            raise DataError(f"{split_file} is not UTF-8 text", TREE_HINT) from err
    else:
        names = sorted(str(p.parent.relative_to(root)) for p in root.glob("*/*/audio.wav"))
        cut = max(1, len(names) // 10)  # no split files: the last 10% are held out
        if len(names) > 1:
            names = names[:-cut] if split == "train" else names[-cut:]
    if not names:
        raise DataError(f"no sequences for split {split!r} under {root}", TREE_HINT)
    subjects = sorted({n.split("/")[0] for n in names})
    out = []
    for name in names:
        subject = name.split("/")[0]
        seq_dir, id_file = root / name, root / subject / "identity.npy"
        for p in (seq_dir / "audio.wav", seq_dir / "expression_codes.npy", id_file):
            if not p.is_file():
                raise MissingPathError(f"missing {p}", TREE_HINT)
        codes = _load_npy(seq_dir / "expression_codes.npy")
        id_code = _load_npy(id_file).reshape(-1)
        if codes.ndim != 2 or codes.shape[1] != exp_dim:
            raise DataError(f"{seq_dir}/expression_codes.npy has shape {codes.shape}; the model "
                             f"expects [T, {exp_dim}] (set data_exp_dim)")
        if id_code.shape[0] != id_dim:
            raise DataError(f"{id_file} has {id_code.shape[0]} values; the model expects "
                             f"{id_dim} (set data_id_dim)")
        wave = load_wav(seq_dir / "audio.wav", sr, fps)
        frames = min(num_frames(len(wave), sr, fps), len(codes))
        if abs(num_frames(len(wave), sr, fps) - len(codes)) > 2:
            raise DataError(f"{name}: audio spans {num_frames(len(wave), sr, fps)} frames at "
                             f"{fps} fps but there are {len(codes)} code frames")
        out.append(Sequence(wave[: frames * sr // fps], codes[:frames], id_code,
                            subjects.index(subject), name))
    return out


def make_sequences(cfg, split: str) -> list[Sequence]:
    """Sequences for `split` according to the config (synthetic or nphm_talk)."""
    if cfg.data_name == "synthetic":
        num = cfg.data_num_sequences if split == "train" else cfg.eval_sequences
        return synthetic_sequences(num, cfg.data_num_identities, cfg.data_seconds,
                                   cfg.data_sample_rate, cfg.data_fps, cfg.data_exp_dim,
                                   cfg.data_id_dim, cfg.seed, split)
    return load_nphm_talk(cfg.data_root, split, cfg.data_sample_rate, cfg.data_fps,
                          cfg.data_exp_dim, cfg.data_id_dim)


def sample_batch(seqs: list[Sequence], batch_size: int, clip_frames: int, sr: int, fps: int,
                 generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Random crops of `clip_frames` frames with their audio.

    Returns:
        dict with audio [B, clip_frames * sr / fps], codes [B, clip_frames, E],
        id_code [B, I], speaker [B] (long).
    """
    spf = sr // fps
    if sr % fps:
        raise ConfigError(f"data_sample_rate {sr} must be a multiple of data_fps {fps}")
    pick = torch.randint(len(seqs), (batch_size,), generator=generator).tolist()
    audio, codes = [], []
    for i in pick:
        seq = seqs[i]
        frames = min(len(seq.codes), len(seq.audio) // spf)
        if frames < clip_frames:
            raise DataError(f"{seq.name}: {frames} frames < data_clip_frames={clip_frames}",
                            "use longer sequences or a smaller data_clip_frames")
        start = int(torch.randint(frames - clip_frames + 1, (1,), generator=generator))
        codes.append(torch.from_numpy(seq.codes[start: start + clip_frames]))
        audio.append(torch.from_numpy(seq.audio[start * spf: (start + clip_frames) * spf]))
    return {"audio": torch.stack(audio), "codes": torch.stack(codes),
            "id_code": torch.stack([torch.from_numpy(seqs[i].id_code) for i in pick]),
            "speaker": torch.tensor([seqs[i].speaker for i in pick])}

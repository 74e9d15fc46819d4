import numpy as np
import pytest
import torch
from scipy.io import wavfile

from facetalk.audio import frame_energy
from facetalk.data import load_nphm_talk, sample_batch, synthetic_sequences
from facetalk.head import BROW, JAW


def _seqs(n=4, split="train"):
    return synthetic_sequences(n, 2, 2.0, 16000, 25, 8, 4, seed=0, split=split)


def test_synthetic_shapes_alignment_and_determinism():
    seqs = _seqs()
    for s in seqs:
        assert s.audio.shape == (32000,) and s.codes.shape == (50, 8) and s.id_code.shape == (4,)
    again = _seqs()
    np.testing.assert_array_equal(seqs[1].codes, again[1].codes)
    test = _seqs(split="test")
    assert not np.array_equal(seqs[0].audio, test[0].audio)
    assert np.array_equal(seqs[0].id_code, seqs[2].id_code)  # same speaker, same identity


def test_mouth_follows_audio_brows_do_not():
    seqs = _seqs(8)
    jaw_corr, brow_corr = [], []
    for s in seqs:
        energy = frame_energy(torch.from_numpy(s.audio), 16000, 25).numpy()
        jaw_corr.append(np.corrcoef(energy, s.codes[:, JAW])[0, 1])
        brow_corr.append(abs(np.corrcoef(energy, s.codes[:, BROW] + 1e-6 * np.arange(50))[0, 1]))
    assert np.mean(jaw_corr) > 0.5 and np.mean(brow_corr) < 0.35, (jaw_corr, brow_corr)


def test_sample_batch_crops(gen):
    batch = sample_batch(_seqs(), 3, 10, 16000, 25, gen)
    assert batch["audio"].shape == (3, 6400) and batch["codes"].shape == (3, 10, 8)
    assert batch["id_code"].shape == (3, 4) and batch["speaker"].dtype == torch.long
    with pytest.raises(ValueError, match="data_clip_frames"):
        sample_batch(_seqs(), 3, 500, 16000, 25, gen)


def _write_tree(root, exp_dim=8, frames=50, rate=16000, channels=1):
    seq = root / "subj01" / "seq000"
    seq.mkdir(parents=True)
    np.save(root / "subj01" / "identity.npy", np.zeros(4, np.float32))
    np.save(seq / "expression_codes.npy", np.zeros((frames, exp_dim), np.float32))
    wave = (0.1 * np.random.default_rng(0).normal(size=(rate * frames // 25, channels)))
    wavfile.write(seq / "audio.wav", rate, (wave.squeeze() * 32767).astype(np.int16))
    return root


def test_nphm_loader_reads_tree_and_resamples_stereo(tmp_path):
    _write_tree(tmp_path, rate=44100, channels=2)
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "test.txt").write_text("subj01/seq000\n")
    seqs = load_nphm_talk(tmp_path, "test", 16000, 25, 8, 4)
    assert len(seqs) == 1 and seqs[0].codes.shape == (50, 8) and len(seqs[0].audio) == 32000


def test_nphm_loader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="expression_codes.npy"):
        load_nphm_talk(tmp_path / "missing", "train", 16000, 25, 8, 4)
    _write_tree(tmp_path, exp_dim=5)
    with pytest.raises(ValueError, match="expects"):
        load_nphm_talk(tmp_path, "train", 16000, 25, 8, 4)

import dataclasses

import numpy as np

from ccdae_similarity import evaluation


def test_real_benchmark_text_and_image_pairs_csv(tiny_system, tiny_cfg, tmp_path):
    from PIL import Image

    cfg = dataclasses.replace(tiny_cfg, ccdae_samples=1, elbo_timesteps=2, data_root=str(tmp_path),
                              bench_name="pairs_csv")
    (tmp_path / "pairs.csv").write_text(
        "a,b,score\none red circle,one red circle on the left,4\n"
        "three blue boxes at night,one red circle,0.5\ntwo green squares,two big squares,3.5\n")
    res = evaluation.real_benchmark(tiny_system, cfg)
    assert res["modality"] == "text" and res["pairs"] == 3
    assert {"ccdae", "minilm_cosine", "clip_cosine"} <= set(res["table"])
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png", "c.png"):
        Image.fromarray((rng.random((24, 24, 3)) * 255).astype(np.uint8)).save(tmp_path / name)
    (tmp_path / "pairs.csv").write_text("a,b,score\na.png,b.png,1\na.png,c.png,2\nb.png,c.png,3\n")
    res = evaluation.real_benchmark(tiny_system, cfg)
    assert res["modality"] == "image" and np.isfinite(res["table"]["ccdae"]["spearman"])

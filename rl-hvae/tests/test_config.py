import pytest

from conftest import TINY
from rl_hvae.config import Config, load_config, parse_config


def test_toml_then_cli_precedence(tmp_path):
    preset = tmp_path / "p.toml"
    preset.write_text('steps = 7\nlr = 0.5\nmodel_dense_latents = [4, 2]\n')
    cfg = parse_config(["--config", str(preset), "--lr", "0.25", "--deterministic", "0"])
    assert cfg.steps == 7 and cfg.lr == 0.25 and cfg.deterministic is False
    assert cfg.model_dense_latents == (4, 2) and cfg.config_name == "p"
    assert parse_config([]) == Config()
    assert parse_config(["--model_dense_latents", "5,3"]).model_dense_latents == (5, 3)


def test_unknown_key_lists_valid_keys(tmp_path):
    with pytest.raises(ValueError, match="unknown config key.*valid keys.*steps"):
        parse_config(["--stepz", "3"])
    bad = tmp_path / "bad.toml"
    bad.write_text("learning_rate = 1.0\n")
    with pytest.raises(ValueError, match="learning_rate"):
        load_config(bad)


def test_wrong_types_and_choices():
    with pytest.raises(ValueError, match="steps"):
        parse_config(["--steps", "many"])
    with pytest.raises(ValueError, match="method"):
        parse_config(["--method", "ppo"])
    with pytest.raises(ValueError, match="true/false"):
        parse_config(["--wandb", "maybe"])
    with pytest.raises(FileNotFoundError):
        parse_config(["--config", "nope.toml"])


def test_presets_parse():
    tiny = load_config(TINY)
    assert tiny.data_name == "digits" and tiny.method == "rl"
    paper = load_config(TINY.replace("tiny", "paper"))
    assert paper.model_channels == 64 and paper.model_dense_latents == (64, 32, 16, 8)
    assert paper.lr == 3e-4 and paper.batch_size == 128 and paper.rl_gamma == 0.9

import pytest

from conftest import TINY
from rl_hvae.config import Config, load_config, parse_config
from rl_hvae.runtime import ConfigError, MissingPathError, UserError


def test_toml_then_cli_precedence(tmp_path):
    preset = tmp_path / "p.toml"
    preset.write_text('steps = 7\nlr = 0.5\nmodel_dense_latents = [4, 2]\n'
                      'model_stage_strides = [2, 2, 1]\nmodel_stage_kernels = [5, 3, 3]\n')
    cfg = parse_config(["--config", str(preset), "--lr", "0.25", "--deterministic", "0"])
    assert cfg.steps == 7 and cfg.lr == 0.25 and cfg.deterministic is False
    assert cfg.model_dense_latents == (4, 2) and cfg.config_name == "p"
    assert parse_config([]) == Config()
    assert parse_config(["--model_dense_latents", "5,3", "--model_stage_strides", "2,2,1",
                         "--model_stage_kernels", "3,3,3"]).model_dense_latents == (5, 3)


def test_unknown_key_lists_valid_keys(tmp_path):
    with pytest.raises(ConfigError, match="unknown config key.*valid keys.*steps"):
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
    with pytest.raises(MissingPathError):
        parse_config(["--config", "nope.toml"])


def test_presets_parse():
    tiny = load_config(TINY)
    assert tiny.data_name == "digits" and tiny.method == "rl"
    paper = load_config(TINY.replace("tiny", "paper"))
    assert paper.model_channels == 64 and paper.model_dense_latents == (64, 32, 16, 8)
    assert paper.lr == 3e-4 and paper.batch_size == 128 and paper.rl_gamma == 0.9


@pytest.mark.parametrize("args, match", [
    (["--lr", "nan"], "lr"), (["--lr", "-1"], "lr"), (["--rl_gamma", "1.5"], "rl_gamma"),
    (["--batch_size", "1"], "batch_size >= 2"), (["--steps", "-2"], "steps"),
    (["--device", "gpu0"], "device"), (["--data_root", "/data/x"], "data_name='digits'"),
    (["--model_dense_latents", "4,2"], "need 3 entries"), (["--model_channels", "0"], ">= 1"),
    (["--data_val_fraction", "1.0"], "data_val_fraction"),
])
def test_out_of_range_values_are_user_errors(args, match):
    with pytest.raises(ConfigError, match=match):
        parse_config(args)


def test_bad_toml_is_a_user_error_on_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("steps = [1,\n")
    with pytest.raises(UserError) as info:
        load_config(bad)
    assert "\n" not in str(info.value) and "not valid TOML" in str(info.value)


def test_paper_preset_uses_released_behaviour():
    paper = load_config(TINY.replace("tiny", "paper"))
    assert paper.arch_skips == "released" and paper.data_binarization == "cached"
    assert Config().arch_skips == "released"

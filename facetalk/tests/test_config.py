import pytest

from facetalk.config import config_from_dict, parse_config


def test_precedence_toml_then_cli(tiny_args):
    cfg = parse_config(tiny_args + ["--steps", "7", "--model_causal", "true"])
    assert cfg.steps == 7 and cfg.model_causal is True
    assert cfg.data_exp_dim == 8 and cfg.config_name == "tiny"


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ValueError, match="valid keys") as err:
        parse_config(["--not_a_field", "1"])
    assert "diff_guidance" in str(err.value)


def test_bad_types_and_literals():
    with pytest.raises(ValueError, match="expected int"):
        parse_config(["--steps", "many"])
    with pytest.raises(ValueError, match="expected one of"):
        config_from_dict({"method": "gan"})
    assert parse_config(["--wandb", "0"]).wandb is False

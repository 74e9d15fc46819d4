import pytest
from conftest import TINY

from clap_vad.config import Config, load_config, parse_config


def test_defaults_then_toml_then_cli():
    assert Config().mode == "collaborative"
    cfg = parse_config(["--config", str(TINY)])
    assert cfg.fl_backend == "inprocess" and cfg.config_name == "tiny"
    cfg = parse_config(["--config", str(TINY), "--steps", "3", "--fl_strategy", "scaffold"])
    assert cfg.steps == 3 and cfg.fl_strategy == "scaffold" and cfg.data_feature_dim == 64


def test_unknown_key_lists_valid_keys(tmp_path):
    with pytest.raises(ValueError, match="valid keys"):
        parse_config(["--not_a_field", "1"])
    bad = tmp_path / "bad.toml"
    bad.write_text("stepz = 3\n")
    with pytest.raises(ValueError, match="stepz"):
        load_config(bad)


def test_types_and_choices():
    assert parse_config(["--pl_share_stats", "0"]).pl_share_stats is False
    with pytest.raises(ValueError, match="expected one of"):
        parse_config(["--split", "weather"])
    with pytest.raises(ValueError, match="expected int"):
        parse_config(["--steps", "many"])

import pytest

from pathdino.config import Config, parse_config


def test_precedence_and_types(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text('steps = 7\nhistorotate = false\nglobal_crops_scale = [0.5, 1.0]\n')
    cfg = parse_config(["--config", str(toml), "--steps", "9", "--lr", "0.1"])
    assert cfg.steps == 9 and cfg.lr == 0.1 and cfg.historotate is False
    assert cfg.global_crops_scale == (0.5, 1.0) and cfg.config_name == "c"
    assert parse_config(["--historotate", "1"]).historotate is True
    assert parse_config([]) == Config()


def test_unknown_key_and_bad_value(tmp_path):
    with pytest.raises(ValueError, match="valid keys"):
        parse_config(["--stepz", "3"])
    toml = tmp_path / "bad.toml"
    toml.write_text("model_dept = 5\n")
    with pytest.raises(ValueError, match="model_depth"):
        parse_config(["--config", str(toml)])
    with pytest.raises(ValueError, match="expected int"):
        parse_config(["--steps", "many"])
    with pytest.raises(ValueError, match="one of"):
        parse_config(["--data_name", "imagenet"])

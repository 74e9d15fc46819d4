import pytest
from tests_paths import PAPER, TINY

from gaussian_shell_maps.config import parse_config


def test_toml_then_cli_precedence():
    cfg = parse_config(["--config", TINY, "--steps", "7", "--use_face_disc", "true"])
    assert cfg.steps == 7 and cfg.use_face_disc is True and cfg.config_name == "tiny"
    assert cfg.data_resolution == 32  # from the TOML


def test_paper_preset_parses():
    cfg = parse_config(["--config", PAPER])
    assert cfg.data_resolution == 512 and cfg.num_shells == 5


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ValueError, match="valid keys"):
        parse_config(["--not_a_field", "1"])
    with pytest.raises(ValueError, match="expected one of"):
        parse_config(["--data_name", "imagenet"])

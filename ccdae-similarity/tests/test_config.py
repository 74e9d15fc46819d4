import pytest

from ccdae_similarity.config import parse_config

from .conftest import ROOT


def test_precedence_and_types():
    cfg = parse_config(["--config", str(ROOT / "configs" / "tiny.toml"), "--steps", "7",
                        "--unet_channels", "8,16", "--deterministic", "false"])
    assert cfg.steps == 7 and cfg.unet_channels == (8, 16) and cfg.deterministic is False
    assert cfg.config_name == "tiny" and cfg.image_size == 16  # from the TOML file


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ValueError, match="valid keys"):
        parse_config(["--stepz", "3"])
    with pytest.raises(ValueError, match="expected one of"):
        parse_config(["--ccdae_likelihood", "magic"])


def test_paper_config_parses():
    cfg = parse_config(["--config", str(ROOT / "configs" / "paper.toml")])
    assert cfg.ccdae_max_complexity >= 6

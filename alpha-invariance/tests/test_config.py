"""parse_config: TOML + CLI precedence, unknown keys, bad values."""

from __future__ import annotations

import pytest

from alpha_invariance.config import parse_config

from .conftest import TINY


def test_precedence_and_types():
    cfg = parse_config(["--config", str(TINY), "--steps", "7", "--recipe", "false",
                        "--data_scene_scale", "0.1"])
    assert cfg.steps == 7 and cfg.recipe is False and cfg.data_scene_scale == 0.1
    assert cfg.model_family == "dvgo"  # from the TOML
    assert cfg.config_name == "tiny"


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ValueError, match="valid keys"):
        parse_config(["--no_such_key", "1"])


@pytest.mark.parametrize("argv", [["--data_scene_scale", "0"], ["--data_scene_scale", "-2"],
                                  ["--model_family", "mipnerf"],
                                  ["--recipe_target_transmittance", "1.5"]])
def test_bad_values(argv):
    with pytest.raises(ValueError):
        parse_config(argv)

import pytest

from vl2v_adip.config import parse_config


def test_toml_then_cli_precedence(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('method = "kd"\nsteps = 7\nsynth_domains = ["photo", "sketch"]\n')
    cfg = parse_config(["--config", str(p), "--steps", "9", "--deterministic", "0"])
    assert (cfg.method, cfg.steps, cfg.deterministic) == ("kd", 9, False)
    assert cfg.synth_domains == ("photo", "sketch") and cfg.config_name == "c"


def test_unknown_key_lists_valid_keys(tmp_path):
    with pytest.raises(ValueError, match="valid keys.*lmd"):
        parse_config(["--lambda", "0.5"])
    p = tmp_path / "c.toml"
    p.write_text("not_a_field = 1\n")
    with pytest.raises(ValueError, match="unknown config key"):
        parse_config(["--config", str(p)])


def test_bad_values():
    with pytest.raises(ValueError, match="method"):
        parse_config(["--method", "miro"])
    with pytest.raises(ValueError, match="steps"):
        parse_config(["--steps", "many"])

"""TrainConfig: TOML out and back in."""

from tinycnn.config import config_from_dict
from tinycnn.recipes import load_recipe


def test_config_round_trip():
    from tinycnn.config import read_toml, to_toml

    config = load_recipe("era-s7-step5")
    import pathlib
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = pathlib.Path(d) / "c.toml"
        p.write_text(to_toml(config.to_dict()))
        assert config_from_dict(read_toml(p)) == config

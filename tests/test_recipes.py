"""The shipped recipes: each parses and builds its model; they say what the write-ups say; errors name the key."""

import pytest
import torch

from tinycnn.cli import main
from tinycnn.errors import TinycnnError
from tinycnn.models import create_model
from tinycnn.recipes import list_recipes, load_recipe
from tinycnn.specs import list_specs


@pytest.mark.parametrize("name", list_recipes())
def test_every_recipe_parses_and_builds_its_model(name):
    config = load_recipe(name)
    model = create_model(config.model, **({} if config.dropout is None else {"dropout": config.dropout}))
    assert model(torch.zeros(2, 1, 28, 28)).shape[0] == 2
    assert config.spec in list_specs()


def test_tiny_5k_recipe_is_the_default_schedule_with_its_own_regularisation():
    tiny, default = load_recipe("tiny-5k"), load_recipe("default")
    assert (tiny.model, tiny.dropout, tiny.rotation) == ("tiny-5k", 0.0, 7.0)
    assert (tiny.epochs, tiny.batch_size, tiny.scheduler, tiny.max_lr) == (default.epochs, default.batch_size, default.scheduler, default.max_lr)


def test_recipe_details_match_the_write_ups():
    s6 = load_recipe("era-s6-19712")
    assert (s6.epochs, s6.batch_size, s6.lr, s6.momentum, s6.rotation, s6.scheduler) == (19, 128, 0.01, 0.9, 10.0, "none")
    s5 = load_recipe("era-s7-step5")
    assert (s5.model, s5.batch_size, s5.scheduler, s5.max_lr, s5.dropout, s5.rotation) == ("era-s7-8172", 64, "onecycle", 0.1, 0.05, 15.0)
    s3 = load_recipe("era-s7-step3")
    assert (s3.model, s3.rotation, s3.epochs, s3.dropout) == ("era-s7-10616-dropout", 6.0, 15, 0.01)
    assert load_recipe("default").model == "era-s7-6750"


def test_the_default_recipe_is_era_s7_step6_with_a_weight_average_and_the_machines_fastest_settings():
    default, step6 = load_recipe("default"), load_recipe("era-s7-step6")
    assert default.changes_from(step6) == {"ema": (0.0, 0.995), "compile": (False, "auto"), "amp": (False, "auto")}
    tiny = load_recipe("tiny-5k")
    assert (tiny.ema, tiny.compile, tiny.amp) == (0.995, "auto", "auto")


@pytest.mark.parametrize(
    "text, message",
    [
        ("modle = 'x'\n", "unknown key 'modle' (did you mean 'model'?)"),
        ("epochs = 'ten'\n", "epochs = 'ten' should be int"),
        ("epochs = 0\n", "epochs must be >= 1"),
        ("optimizer = 'rmsprop'\n", "optimizer = 'rmsprop' is not one of"),
        ("lr = -1\n", "lr must be a positive number"),
        ("epochs = \n", "not valid TOML"),
    ],
)


def test_recipe_errors_name_the_key(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(TinycnnError) as err:
        load_recipe(str(path))
    assert message in str(err.value)


def test_unknown_recipe_and_extends_loop(tmp_path, capsys):
    with pytest.raises(TinycnnError, match="did you mean era-s7-step6"):
        load_recipe("era-s7-step66")
    (tmp_path / "a.toml").write_text(f'extends = "{tmp_path / "b.toml"}"\n')
    (tmp_path / "b.toml").write_text(f'extends = "{tmp_path / "a.toml"}"\n')
    with pytest.raises(TinycnnError, match="loops back"):
        load_recipe(str(tmp_path / "a.toml"))
    assert main(["train", "--recipe", "nope", "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown recipe" in err[0]

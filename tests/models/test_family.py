"""The parametric family: its defaults are tiny-5k, every argument changes the network the way
its docstring says, and a design that does not fit a 28x28 image is one line."""

import pytest
import torch

from tinycnn.errors import TinycnnError
from tinycnn.models import create_model
from tinycnn.models.summary import summarize


def test_the_defaults_are_tiny_5k():
    family, tiny = create_model("family"), create_model("tiny-5k")
    assert {k: v.shape for k, v in family.state_dict().items()} == {k: v.shape for k, v in tiny.state_dict().items()}


@pytest.mark.parametrize("args", [
    {"widths": [6, 8, 10, 12], "pool_after": 1, "padded": 0, "transition": 0},
    {"widths": [8, 8, 8, 8, 8], "pool_after": 3, "padded": 3, "head": "fc"},
    {"widths": [4, 6, 8], "pool_after": 0, "padded": 0, "dropout": 0.0},
    {"widths": [8, 10], "pool_after": 2, "padded": 2},
])
def test_designs_give_ten_logits(args):
    model = create_model("family", **args).eval()
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_the_arguments_shape_the_network():
    base = {"widths": [8, 8, 10, 10], "pool_after": 2, "padded": 0, "transition": 0}
    params = lambda **kw: summarize(create_model("family", **{**base, **kw})).total_params
    names = lambda **kw: dict(create_model("family", **{**base, **kw}).named_children())
    assert "t1" in names(transition=6) and "t1" not in names()  # the 1x1 transition after the pool
    assert names(transition=6)["t1"][0].weight.shape == (6, 8, 1, 1)
    assert params(head="fc") > params()  # a Linear over the last map instead of a 1x1 after the GAP
    with_pool = summarize(create_model("family", **base))
    assert with_pool.rows[-1].output_shape[-1] == 10
    assert not any(isinstance(m, torch.nn.Dropout) for m in create_model("family", **base, dropout=0.0).modules())
    assert all(m.p == 0.1 for m in create_model("family", **base, dropout=0.1).modules() if isinstance(m, torch.nn.Dropout))


@pytest.mark.parametrize("args, message", [
    ({"widths": [8] * 14, "padded": 0}, "the map vanishes at convolution"),
    ({"widths": [8, 8], "pool_after": 3}, "pool_after and padded must be in [0, 2]"),
    ({"widths": [8, 0]}, "widths must be positive"),
    ({"head": "mlp"}, "head must be 'gap' or 'fc'"),
])
def test_a_design_that_cannot_be_built_is_one_line(args, message):
    with pytest.raises(TinycnnError, match=message.replace("[", r"\[").replace("]", r"\]")):
        create_model("family", **args)


def test_a_design_trains_from_the_command_line(tmp_path, capsys):
    from tinycnn.cli import main

    design = '{"widths": [6, 8, 8, 10], "pool_after": 1, "padded": 0}'
    out = tmp_path / "run"
    assert main(["train", "--model", "family", "--model-args", design, "--subset", "200", "--epochs", "1",
                 "--no-compile", "--no-amp", "--device", "cpu", "--no-progress", "--out", str(out)]) == 0
    assert "model_args = { widths = [6, 8, 8, 10], pool_after = 1, padded = 0 }" in (out / "config.toml").read_text()
    assert main(["eval", str(out)]) == 0  # the design is rebuilt from config.toml
    capsys.readouterr()
    assert main(["train", "--model", "family", "--model-args", "widths=8", "--subset", "10"]) == 1
    assert "--model-args 'widths=8': not JSON" in capsys.readouterr().err


@pytest.mark.parametrize("name, search, trial, searched", [
    ("tiny-3924", "under-4k-settings", 0, {"widths": [8, 10, 8, 8, 8, 14], "transition": 0}),
    ("tiny-3888", "under-4k-designs", 20, {"widths": [8, 8, 8, 8, 8, 8, 10], "transition": 0, "pool_after": 3, "padded": 3}),
    ("tiny-7812", "under-8k-designs", 0, {"widths": [8, 10, 12, 12, 12, 12, 16], "transition": 0, "pool_after": 3,
                                          "padded": 3}),
])
def test_a_searched_design_is_a_zoo_model_and_a_recipe(name, search, trial, searched):
    """The zoo model is the family design its search confirmed, and its recipe is the search's
    best-*.toml of that trial."""
    import tomllib
    from pathlib import Path

    from tinycnn.recipes import load_recipe

    torch.manual_seed(0)
    zoo = create_model(name, dropout=0.0).state_dict()
    torch.manual_seed(0)
    design = create_model("family", **searched, dropout=0.0).state_dict()
    assert list(zoo) == list(design) and all(torch.equal(zoo[k], design[k]) for k in zoo)
    directory = Path(__file__).resolve().parents[2] / "results" / "search" / search
    assert (directory / "confirm" / f"trial-{trial}" / "summary.json").exists()
    best = next(p for p in directory.glob("best-*.toml") if f"search trial {trial}:" in p.read_text())
    assert tomllib.loads(best.read_text())["model_args"] == searched
    found, shipped = load_recipe(str(best)).to_dict(), load_recipe(name).to_dict()
    differ = {k for k in found if found[k] != shipped[k]}
    assert differ == {"name", "description", "source", "model", "model_args"}, differ

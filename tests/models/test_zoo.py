"""The model zoo: every registered model builds, has its published parameter count, and runs.

    python -m pytest tests/test_models.py -q
"""

import pytest
import torch
from torch import nn

from tinycnn.errors import TinycnnError
from tinycnn.models import create_model, list_models, model_info

# Parameter counts as the write-ups print them (our own designs: as built).
EXPECTED_PARAMS = {
    "era-s6-19712": 19_712,
    "era-s6-11952": 11_952,
    "era-s6-15938": 15_938,
    "era-s7-147k": 147_344,
    "era-s7-10616": 10_616,
    "era-s7-10616-dropout": 10_616,
    "era-s7-8172": 8_172,
    "era-s7-6750": 6_750,
    "tiny-5k": 5_292,
    "tiny-4k": 4_280,
    "tiny-3k": 3_128,
    "tiny-3924": 3_924,
    "tiny-3888": 3_888,
    "tiny-7812": 7_812,
    "family": 5_292,  # its defaults are tiny-5k's design
}

SEED_NAMES = [n for n in EXPECTED_PARAMS if n.startswith("era-")] + ["era-s6-16k"]


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_every_seed_is_registered():
    assert set(SEED_NAMES) <= set(list_models())
    assert set(list_models()) == set(EXPECTED_PARAMS) | {"era-s6-16k"}


@pytest.mark.parametrize("name", list_models())
def test_builds_with_expected_count_and_output(name):
    model = create_model(name).eval()
    n = count(model)
    if name == "era-s6-16k":
        assert 15_000 <= n <= 17_000  # the write-up says "16k"; the layer list is ours
    else:
        assert n == EXPECTED_PARAMS[name]
    with torch.no_grad():
        y = model(torch.randn(2, 1, 28, 28))
    assert y.shape == (2, model_info(name).n_logits)


@pytest.mark.parametrize("name", list_models())
def test_trains_one_step_and_channels_last(name):
    model = create_model(name).train()
    x = torch.randn(4, 1, 28, 28).to(memory_format=torch.channels_last)
    y = model.to(memory_format=torch.channels_last)(x)
    loss = nn.functional.cross_entropy(y, torch.tensor([0, 3, 7, 9]))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in model.parameters())


def test_sixteen_logit_seeds_are_marked():
    assert {n for n in list_models() if model_info(n).n_logits != 10} == {
        "era-s6-11952",
        "era-s7-10616",
        "era-s7-10616-dropout",
    }


def test_list_models_pattern():
    assert list_models("era-s7-10616*") == ["era-s7-10616", "era-s7-10616-dropout"]
    assert all(n.startswith("tiny-") for n in list_models("tiny-*"))
    assert list_models("nothing-like-this*") == []
    assert list_models("3924") == ["tiny-3924"] and list_models("tiny") == list_models("tiny-*")


def test_dropout_override_reaches_every_dropout_layer():
    def rates(model):
        return [m.p for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]

    for name in list_models():
        info = model_info(name)
        default = rates(create_model(name))
        assert bool(default) == ("dropout" in info.overrides), name
        if default:
            assert default == [info.overrides["dropout"]] * len(default)
            assert rates(create_model(name, dropout=0.2)) == [0.2] * len(default)


def test_document_rates_are_defaults():
    assert model_info("era-s6-19712").overrides == {"dropout": 0.1}
    assert model_info("era-s6-11952").overrides == {"dropout": 0.25}
    assert model_info("era-s7-6750").overrides == {"dropout": 0.05}
    assert model_info("era-s7-147k").overrides == {}


def test_era_s6_19712_matches_published_table():
    # (type, output shape, params) of the write-up's 32-row torchsummary table.
    published = [
        ("Conv2d", (16, 26, 26), 144), ("ReLU", (16, 26, 26), 0), ("BatchNorm2d", (16, 26, 26), 32),
        ("Dropout2d", (16, 26, 26), 0), ("Conv2d", (16, 24, 24), 2304), ("ReLU", (16, 24, 24), 0),
        ("BatchNorm2d", (16, 24, 24), 32), ("Conv2d", (32, 22, 22), 4608), ("ReLU", (32, 22, 22), 0),
        ("BatchNorm2d", (32, 22, 22), 64), ("Dropout2d", (32, 22, 22), 0), ("Conv2d", (16, 22, 22), 528),
        ("ReLU", (16, 22, 22), 0), ("MaxPool2d", (16, 11, 11), 0), ("Conv2d", (16, 9, 9), 2304),
        ("ReLU", (16, 9, 9), 0), ("BatchNorm2d", (16, 9, 9), 32), ("Dropout2d", (16, 9, 9), 0),
        ("Conv2d", (16, 9, 9), 2304), ("ReLU", (16, 9, 9), 0), ("BatchNorm2d", (16, 9, 9), 32),
        ("Dropout2d", (16, 9, 9), 0), ("Conv2d", (16, 7, 7), 2304), ("ReLU", (16, 7, 7), 0),
        ("BatchNorm2d", (16, 7, 7), 32), ("Dropout2d", (16, 7, 7), 0), ("Conv2d", (32, 5, 5), 4608),
        ("ReLU", (32, 5, 5), 0), ("BatchNorm2d", (32, 5, 5), 64), ("Dropout2d", (32, 5, 5), 0),
        ("Conv2d", (10, 5, 5), 320), ("AvgPool2d", (10, 1, 1), 0),
    ]
    from tinycnn.models.summary import summarize

    rows = summarize(create_model("era-s6-19712")).rows
    assert [(r.type, r.output_shape, r.params) for r in rows[:-1]] == published
    assert rows[-1].type == "Flatten"


def test_unknown_name_suggests_close_match():
    with pytest.raises(TinycnnError, match="era-s7-6750") as e:
        create_model("era-s7-675")
    assert "tinycnn models" in str(e.value)
    assert "\n" not in str(e.value)


def test_bad_override_names_accepted_ones():
    with pytest.raises(TinycnnError, match=r"drop_rate.*dropout=0\.05"):
        create_model("era-s7-6750", drop_rate=0.1)
    with pytest.raises(TinycnnError, match="accepts: none"):
        create_model("era-s7-147k", dropout=0.1)
    with pytest.raises(TinycnnError, match="dropout must be"):
        create_model("era-s7-6750", dropout=1.5)


def test_none_override_means_default():
    model = create_model("era-s7-6750", dropout=None)
    assert count(model) == 6_750

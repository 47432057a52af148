"""The summary against references: torchinfo for parameters and multiply-adds, hand-worked
receptive fields (Araujo et al., Distill 2019) for several models, and the CLI around it.

    python -m pytest tests/test_summary.py -q
"""

import pytest
import torch
import torchinfo
from torch import nn

from tinycnn.cli import main
from tinycnn.models import create_model, list_models, model_info
from tinycnn.models.summary import summarize


def rf_by_name(summary):
    return {row.name: (row.receptive_field, row.jump) for row in summary.rows}


@pytest.mark.parametrize("name", list_models())
def test_totals_match_torchinfo(name):
    model = create_model(name)
    ours = summarize(model)
    ref = torchinfo.summary(model, input_size=(1, 1, 28, 28), verbose=0)
    assert ours.total_params == ref.total_params == sum(p.numel() for p in model.parameters())
    assert ours.trainable_params == ref.trainable_params
    assert ours.macs == ref.total_mult_adds
    assert ours.n_logits == model_info(name).n_logits
    text = ours.render(title=name)
    assert name in text and f"{ours.total_params:,}" in text


def test_receptive_field_era_s6_19712():
    s = summarize(create_model("era-s6-19712"))
    convs = [r for r in s.rows if r.type == "Conv2d"]
    assert [r.receptive_field for r in convs] == [3, 5, 7, 7, 12, 16, 20, 24, 24]
    pool = next(r for r in s.rows if r.type == "MaxPool2d")
    assert (pool.receptive_field, pool.jump) == (8, 2)
    avg = next(r for r in s.rows if r.type == "AvgPool2d")
    assert (avg.receptive_field, avg.jump) == (32, 10)  # 24 + (5 - 1) * 2
    assert s.receptive_field == 32 and s.has_gap


def test_receptive_field_era_s7_6750():
    rf = rf_by_name(summarize(create_model("era-s7-6750")))
    assert rf["c1.0"] == (3, 1) and rf["c2.0"] == (5, 1) and rf["pool"] == (6, 2)
    assert [rf[f"c{i}.0"][0] for i in range(3, 8)] == [10, 14, 18, 22, 26]
    assert rf["gap"] == (32, 8)  # 4x4 map at jump 2: 26 + 3 * 2


def test_receptive_field_era_s7_147k_five_by_five_head():
    rf = rf_by_name(summarize(create_model("era-s7-147k")))
    assert [rf[f"c{i}"][0] for i in range(1, 7)] == [3, 5, 7, 12, 16, 20]
    assert rf["head"] == (28, 2)  # 20 + (5 - 1) * 2


def test_receptive_field_with_strided_convs_era_s6_11952():
    rf = rf_by_name(summarize(create_model("era-s6-11952")))
    assert rf["conv1.0"] == (3, 1)
    assert rf["conv1.3"] == (5, 2)  # stride-2 conv
    assert rf["conv1.6"] == (7, 4)  # MaxPool(2, 2)
    assert rf["conv2.0"] == (15, 4)
    assert rf["conv3.3"] == (95, 32)


def test_receptive_field_dilation_and_fc_on_a_map():
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, stride=2),  # 13x13
        nn.Conv2d(4, 4, 3, dilation=2),  # 9x9
        nn.Flatten(),
        nn.Linear(4 * 9 * 9, 10),  # sees the whole 9x9 map: 11 + (9 - 1) * 2
    )
    s = summarize(model)
    assert [(r.receptive_field, r.jump) for r in s.rows] == [(3, 2), (11, 2), (11, 2), (27, 2)]
    assert s.has_linear and not s.has_gap and s.n_logits == 10


def test_structural_facts():
    s = summarize(create_model("era-s6-11952"))
    assert (s.has_batchnorm, s.has_dropout, s.has_gap, s.has_linear, s.n_maxpool, s.n_logits) == (
        True, True, False, False, 2, 16,
    )
    s = summarize(create_model("era-s6-15938"))
    assert (s.has_gap, s.has_linear, s.n_maxpool) == (True, True, 3)
    s = summarize(create_model("era-s6-16k"))
    assert (s.has_batchnorm, s.has_dropout, s.has_gap, s.has_linear) == (True, True, True, False)
    assert s.n_maxpool == 2
    s = summarize(create_model("era-s7-147k"))
    assert (s.has_batchnorm, s.has_dropout, s.has_gap, s.n_maxpool) == (False, False, False, 1)
    assert not summarize(create_model("era-s7-6750", dropout=0.0)).has_dropout


def test_memory_totals():
    s = summarize(create_model("era-s7-6750"))
    assert s.param_bytes == 4 * 6_750
    assert s.activation_bytes == 4 * sum(torch.Size(r.output_shape).numel() for r in s.rows)
    assert s.rows[0].output_shape == (10, 28, 28) and s.rows[0].macs == 90 * 28 * 28


class WithSpare(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = create_model("tiny-3k")
        self.spare = nn.Linear(10, 10)  # defined, never called

    def forward(self, x):
        return self.body(x)


def test_unused_module_is_flagged_and_counted():
    model = WithSpare()
    s = summarize(model)
    assert [(u.name, u.type, u.params) for u in s.unused] == [("spare", "Linear", 110)]
    ref = torchinfo.summary(model, input_size=(1, 1, 28, 28), verbose=0)
    assert s.total_params == 3_128 + 110 == ref.total_params
    assert not s.has_linear  # it never runs
    assert "never run" in s.render() and "spare" in s.render()


def test_summary_keeps_training_mode():
    model = create_model("tiny-4k").train()
    summarize(model)
    assert model.training


def test_cli_models(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in list_models():
        assert name in out
    assert "19,712" in out and "147,344" in out and "https://github.com/dine1717/ERA2" in out


def test_cli_models_pattern_without_match(capsys):
    assert main(["models", "nothing*"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tinycnn models" in err


def test_cli_summary(capsys):
    assert main(["summary", "era-s7-6750"]) == 0
    out = capsys.readouterr().out
    assert "era-s7-6750" in out and "6,750" in out and "AdaptiveAvgPool2d" in out
    assert "receptive field   32" in out and "MaxPool x1" in out


def test_cli_summary_sixteen_logits_and_dropout(capsys):
    assert main(["summary", "era-s7-10616-dropout", "--dropout", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "16 logits" in out and "16 outputs" in out


def test_cli_unknown_model_is_one_line(capsys):
    assert main(["summary", "era-s7-675"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "era-s7-6750" in captured.err


def test_cli_bad_override_is_one_line(capsys):
    assert main(["summary", "era-s7-147k", "--dropout", "0.1"]) == 1
    assert capsys.readouterr().err.count("\n") == 1

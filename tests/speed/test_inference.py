"""Evaluation through inference_copy (BatchNorm folded, channels_last on the CPU) against the
reference: the model itself in eval mode."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tinycnn.data.loader import NORMALIZATION, BatchLoader, load_splits
from tinycnn.engine.evaluate import evaluate
from tinycnn.models import create_model, list_models
from tinycnn.speed.fast_dropout import use_fast_dropout
from tinycnn.speed.inference import ChannelsLastInput, inference_copy


def _batchnorms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def _with_statistics(model: nn.Module) -> nn.Module:
    """BatchNorm scales, shifts and running statistics away from their initial values, so
    that folding them has something to get wrong."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
        model.train()
        for _ in range(3):
            model(torch.randn(64, 1, 28, 28) * 2 + 0.5)
    return model


@pytest.mark.parametrize("name", list_models())
def test_the_copy_computes_the_models_logits_and_leaves_the_model_alone(name):
    torch.manual_seed(0)
    model = _with_statistics(create_model(name))
    use_fast_dropout(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(32, 1, 28, 28)
    net = inference_copy(model, x)
    assert model.training and not net.training
    assert isinstance(net, ChannelsLastInput)  # on the CPU every registered model runs in channels_last
    with torch.no_grad():
        got = net(x)
        reference = model.eval()(x)
    assert torch.allclose(got, reference, rtol=1e-4, atol=1e-4), (got - reference).abs().max()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_batchnorm_after_a_convolution_is_folded_and_after_a_relu_kept():
    x = torch.randn(4, 1, 28, 28)
    assert _batchnorms(create_model("era-s7-8172")) == 7
    assert _batchnorms(inference_copy(create_model("era-s7-8172"), x)) == 0
    # The Session 6 networks put BatchNorm after the ReLU: nothing to fold there.
    s6 = create_model("era-s6-19712")
    assert _batchnorms(inference_copy(s6, x)) == _batchnorms(s6) > 0


class _ValueBranch(nn.Module):
    """Control flow on a tensor's value: torch.fx cannot trace it."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn, self.head = nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 10)

    def forward(self, x):
        h = self.bn(self.conv(x))
        if h.sum() > 0:
            h = h * 2
        return self.head(h.mean((2, 3)))


def test_a_model_torch_fx_cannot_trace_is_evaluated_unfolded():
    torch.manual_seed(0)
    model = _with_statistics(_ValueBranch())
    x = torch.randn(8, 1, 28, 28)
    net = inference_copy(model, x)
    assert _batchnorms(net) == 1
    with torch.no_grad():
        assert torch.allclose(net(x), model.eval()(x), atol=1e-6)


class _ViewHead(nn.Module):
    """A fully connected head on x.view(n, -1) of a convolution's output, as in many
    notebooks: the view needs the default layout."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn, self.fc = nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Linear(4 * 26 * 26, 10)

    def forward(self, x):
        h = torch.relu(self.bn(self.conv(x)))
        return self.fc(h.view(h.shape[0], -1))


def test_a_model_that_views_its_activations_is_evaluated_in_the_default_layout(tmp_path):
    torch.manual_seed(0)
    model = _with_statistics(_ViewHead())
    x = torch.randn(8, 1, 28, 28)
    net = inference_copy(model, x)
    assert not isinstance(net, ChannelsLastInput) and _batchnorms(net) == 0
    with torch.no_grad():
        assert torch.allclose(net(x), model.eval()(x), atol=1e-5)
    images, labels = load_splits("mnist")["test"]
    loader = BatchLoader(images[:300], labels[:300], 128, mean=NORMALIZATION["mnist"][0], std=NORMALIZATION["mnist"][1])
    assert evaluate(model, loader)["correct"] == evaluate(model, loader, folded=False)["correct"]


def test_evaluate_matches_the_model_in_eval_mode_on_real_mnist():
    torch.manual_seed(0)
    model = _with_statistics(create_model("era-s7-6750"))
    images, labels = load_splits("mnist")["test"]
    loader = BatchLoader(images[:1000], labels[:1000], 256, mean=NORMALIZATION["mnist"][0], std=NORMALIZATION["mnist"][1])
    got = evaluate(model, loader)
    assert model.training  # evaluate leaves the model's mode alone
    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for x, y in loader.epoch(0):
            logits = model(x)
            loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += int((logits.argmax(1) == y).sum())
    assert got["correct"] == correct and got["n"] == 1000
    assert got["loss"] == pytest.approx(loss / 1000, rel=1e-5)


def test_a_course_style_network_is_evaluated_as_it_computes():
    """BatchNorm after ReLU, log_softmax with an implicit dim, x.view(-1, 10): the copy gives
    the network's own outputs."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "fixtures" / "course_net.py"
    spec = importlib.util.spec_from_file_location("course_net_inference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    net = module.Net().eval()
    for m in net.modules():  # statistics that are not the identity
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(32, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(inference_copy(net, x)(x), net(x), rtol=1e-4, atol=1e-5)

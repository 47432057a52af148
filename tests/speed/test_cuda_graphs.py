"""Training steps replayed as CUDA graphs (graph_step.py) train as the eager steps do.

These need a GPU; without one they are skipped (the CPU never captures graphs)."""

import pytest
import torch
import torch.nn.functional as F

from tinycnn.engine.trainer import Trainer
from tinycnn.errors import TinycnnError
from tinycnn.models.registry import create_model
from tinycnn.recipes import load_recipe
from tinycnn.speed.cuda_graphs import GraphedStep, graphs_apply

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")


def test_graphs_apply_only_on_a_gpu():
    config = load_recipe("default")
    assert graphs_apply(config, torch.device("cpu")) is False
    assert graphs_apply(config, torch.device("cuda")) is True
    config.cuda_graphs = False
    assert graphs_apply(config, torch.device("cuda")) is False


def _pair(dropout=0.0):
    models = []
    for _ in range(2):
        torch.manual_seed(0)
        models.append(create_model("era-s7-8172", dropout=dropout).cuda().train())
    return models


def _forward_backward(model):
    def fb(x, y):
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        return loss.detach(), logits.detach()

    return fb


@cuda
def test_graphed_steps_equal_eager_steps_across_two_batch_shapes():
    torch.backends.cudnn.deterministic = True
    eager, graphed = _pair()
    g = torch.Generator(device="cuda").manual_seed(1)
    epoch = [(torch.randn(n, 1, 28, 28, device="cuda", generator=g), torch.randint(0, 10, (n,), device="cuda", generator=g)) for n in (32, 32, 32, 20)]
    opt_e = torch.optim.SGD(eager.parameters(), lr=0.05, momentum=0.9)
    opt_g = torch.optim.SGD(graphed.parameters(), lr=0.05, momentum=0.9)
    step = GraphedStep(_forward_backward(graphed), list(graphed.parameters()), warmup=1)
    fb_e = _forward_backward(eager)
    for _ in range(4):  # the 20-image batch is eager twice, then captured: shapes alternate
        for x, y in epoch:
            opt_e.zero_grad(set_to_none=True)
            loss_e, _ = fb_e(x, y)
            opt_e.step()
            loss_g, _ = step(x, y)
            opt_g.step()
            torch.testing.assert_close(loss_g, loss_e, rtol=1e-5, atol=1e-6)
    assert len(step._graphs) == 2
    for pe, pg in zip(eager.parameters(), graphed.parameters()):
        torch.testing.assert_close(pg, pe, rtol=1e-4, atol=1e-5)
    for be, bg in zip(eager.buffers(), graphed.buffers()):
        torch.testing.assert_close(bg, be, rtol=1e-4, atol=1e-5)


@cuda
def test_dropout_masks_are_new_at_every_replay():
    model = create_model("era-s7-8172", dropout=0.5).cuda().train()
    x = torch.randn(16, 1, 28, 28, device="cuda")
    y = torch.randint(0, 10, (16,), device="cuda")
    step = GraphedStep(_forward_backward(model), list(model.parameters()), warmup=1)
    step(x, y)
    first = step(x, y)[1].clone()  # captured and replayed
    second = step(x, y)[1].clone()
    assert len(step._graphs) == 1
    assert not torch.equal(first, second)


@cuda
@pytest.mark.parametrize("compile", [False, True])
def test_trainer_with_graphs_follows_the_trainer_without(tmp_path, compile):
    losses = {}
    for graphs in (False, True):
        config = load_recipe(
            "default", subset=3000, epochs=2, batch_size=128, device="cuda", cuda_graphs=graphs, compile=compile, dropout=0.0
        )
        result = Trainer(config, tmp_path / f"g{graphs}", progress=False, log=lambda m: None).fit()
        losses[graphs] = [m["train_loss"] for m in result.metrics]
        assert result.metrics[-1]["test_acc"] > 50
    # without dropout the same computation; cuDNN and inductor may sum in other orders
    for a, b in zip(losses[False], losses[True]):
        assert abs(a - b) < 0.02 * a


def test_a_step_that_cannot_be_captured_is_one_clear_error(monkeypatch):
    # Stand-ins for the CUDA calls, so that the failure path runs on any machine.
    class Graph:
        def replay(self):
            raise AssertionError("never captured")

    class FailingCapture:
        def __init__(self, graph):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            if exc[0] is None:
                raise RuntimeError("operation not permitted when stream is capturing\nmore detail")
            return False

    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    monkeypatch.setattr(torch.cuda, "CUDAGraph", Graph)
    monkeypatch.setattr(torch.cuda, "graph", FailingCapture)
    model = create_model("era-s7-8172", dropout=0.0)
    step = GraphedStep(_forward_backward(model), list(model.parameters()), warmup=1)
    x, y = torch.randn(4, 1, 28, 28), torch.randint(0, 10, (4,))
    step(x, y)  # the eager warm-up step
    with pytest.raises(TinycnnError, match=r"could not capture the training step as a CUDA graph \(RuntimeError: operation not permitted when stream is capturing\); train with --no-cuda-graphs"):
        step(x, y)

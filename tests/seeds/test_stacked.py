"""Seeds stacked in one network against separate models and runs."""

import copy

import pytest
import torch
import torch.nn.functional as F

from tinycnn.config import TrainConfig
from tinycnn.engine.epoch_loop import EpochSums
from tinycnn.engine.trainer import Trainer
from tinycnn.errors import TinycnnError
from tinycnn.models import create_model
from tinycnn.seeds.stacked import (
    StackedRun,
    per_seed_loss,
    stack_models,
    stacked_input,
    unstack_state,
)
from tinycnn.speed.fast_dropout import FastDropout, use_fast_dropout


def _quiet(_):
    pass


@pytest.mark.parametrize("name", ["era-s7-6750", "era-s6-15938", "era-s6-19712"])
def test_stacked_seeds_are_separate_models_exactly_in_float64(name):
    """Same gradients and same updates, seed by seed (dropout off: its masks are drawn once
    for all seeds, so they are not a separate run's)."""
    s = 2
    models = []
    for seed in range(s):
        torch.manual_seed(seed)
        model = create_model(name, dropout=0.0)
        if name == "era-s7-6750":
            use_fast_dropout(model)
        models.append(model.double())
    stacked = stack_models(copy.deepcopy(models))
    xs = [torch.randn(3, 4, 1, 28, 28, dtype=torch.float64) for _ in range(s)]
    ys = [torch.randint(0, 10, (3, 4)) for _ in range(s)]
    opt = torch.optim.SGD(stacked.parameters(), lr=0.05, momentum=0.9)
    for i in range(3):
        losses = per_seed_loss(stacked(stacked_input([x[i] for x in xs])), torch.stack([y[i] for y in ys], 1), s)
        opt.zero_grad()
        losses.sum().backward()
        opt.step()
    for seed, model in enumerate(models):
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        for i in range(3):
            opt.zero_grad()
            F.cross_entropy(model(xs[seed][i]), ys[seed][i]).backward()
            opt.step()
        mine, theirs = unstack_state(stacked.state_dict(), s, seed), model.state_dict()
        assert mine.keys() == theirs.keys()
        for key in theirs:
            torch.testing.assert_close(mine[key], theirs[key], rtol=0, atol=1e-10, msg=key)


@pytest.mark.parametrize("name", ["era-s7-6750", "era-s6-15938"])
def test_stacked_run_matches_two_trainer_runs(tmp_path, name):
    """The real thing in float32: StackedRun against Trainer's own epoch, seeds 0 and 1."""
    # Two batches: float32 rounding that flips a max-pool tie sends a gradient elsewhere, and
    # from there the runs drift apart step by step (exactly equal in float64: the test above).
    config = TrainConfig(model=name, dropout=0.0, subset=64, batch_size=32, rotation=15.0, epochs=1, lr=0.01, device="cpu", threads=1)
    run = StackedRun(config, [0, 1])
    stacked = run.epoch(0)
    for i, seed in enumerate((0, 1)):
        trainer = Trainer(TrainConfig(**{**config.to_dict(), "seed": seed}), tmp_path / str(seed), progress=False, log=_quiet)
        trainer._setup()
        row = trainer._train_epoch(0, EpochSums(), None)
        # The same training up to float32 rounding, which the grouped convolutions do differently.
        assert stacked["train_loss"][i] == pytest.approx(row["train_loss"], abs=1e-4)
        assert stacked["train_acc"][i] == pytest.approx(row["train_acc"])
        mine, theirs = run.state(i), trainer.model.state_dict()
        for key in theirs:
            torch.testing.assert_close(mine[key].float(), theirs[key].float(), rtol=0, atol=1e-3, msg=key)


@pytest.mark.parametrize("layer", [FastDropout(0.3), torch.nn.Dropout(0.3), torch.nn.Dropout2d(0.3)])
def test_stacked_dropout_keeps_each_seeds_distribution(layer):
    """One mask over all seeds: per seed the keep rate and scale of the layer alone, and
    other masks for other seeds."""
    torch.manual_seed(0)
    dropout = stack_models([torch.nn.Sequential(layer), torch.nn.Sequential(copy.deepcopy(layer))])
    y = dropout(torch.ones(256, 2 * 8, 12, 12))
    for seed in (0, 1):
        part = y[:, seed * 8:(seed + 1) * 8]
        assert (part == 0).float().mean().item() == pytest.approx(0.3, abs=0.01)
        assert part.mean().item() == pytest.approx(1.0, abs=0.03)
    assert not torch.equal(y[:, :8] == 0, y[:, 8:] == 0)
    assert torch.equal(dropout.eval()(torch.ones(2, 16, 3, 3)), torch.ones(2, 16, 3, 3))


def test_unstackable_model_is_one_line_error():
    with pytest.raises(TinycnnError, match="no stacked form of Conv1d"):
        stack_models([torch.nn.Sequential(torch.nn.Conv1d(1, 2, 3))] * 2)

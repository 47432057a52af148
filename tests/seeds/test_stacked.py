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
from tinycnn.seeds import stacked as multiseed
from tinycnn.seeds.stacked import (
    StackedRun,
    per_seed_loss,
    stack_models,
    stacked_input,
    unstack_state,
)
from tinycnn.speed import fast_dropout
from tinycnn.speed.fast_dropout import uniform16_mask, use_fast_dropout


def _quiet(_):
    pass


@pytest.mark.parametrize("name", ["era-s7-6750", "era-s6-15938", "era-s6-19712"])
def test_stacked_seeds_are_separate_models_exactly_in_float64(name):
    """Same gradients and same updates, seed by seed, with dropout masks included."""
    s = 2
    models, generators = [], []
    for seed in range(s):
        torch.manual_seed(seed)
        model = create_model(name)
        if name == "era-s7-6750":
            use_fast_dropout(model)
        models.append(model.double())
        generators.append(torch.Generator().set_state(torch.get_rng_state()))
    stacked = stack_models(copy.deepcopy(models), generators)
    xs = [torch.randn(3, 4, 1, 28, 28, dtype=torch.float64) for _ in range(s)]
    ys = [torch.randint(0, 10, (3, 4)) for _ in range(s)]
    opt = torch.optim.SGD(stacked.parameters(), lr=0.05, momentum=0.9)
    for i in range(3):
        losses = per_seed_loss(stacked(stacked_input([x[i] for x in xs])), torch.stack([y[i] for y in ys], 1), s)
        opt.zero_grad()
        losses.sum().backward()
        opt.step()
    for seed, model in enumerate(models):
        torch.manual_seed(seed)
        create_model(name)  # the same draws as at set-up, so dropout continues from the same state
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
def test_stacked_run_matches_two_trainer_runs(tmp_path, monkeypatch, name):
    """The real thing in float32: StackedRun against Trainer's own epoch, seeds 0 and 1."""
    masks = []

    def recorded(*args, **kwargs):
        mask = uniform16_mask(*args, **kwargs)
        masks.append(mask.clone())
        return mask

    monkeypatch.setattr(fast_dropout, "uniform16_mask", recorded)
    monkeypatch.setattr(multiseed, "uniform16_mask", recorded)
    config = TrainConfig(model=name, subset=128, batch_size=32, rotation=15.0, epochs=1, lr=0.01, device="cpu", threads=1)
    run = StackedRun(config, [0, 1])
    stacked = run.epoch(0)
    stacked_masks, masks[:] = masks[:], []
    for i, seed in enumerate((0, 1)):
        trainer = Trainer(TrainConfig(**{**config.to_dict(), "seed": seed}), tmp_path / str(seed), progress=False, log=_quiet)
        trainer._setup()
        row = trainer._train_epoch(0, EpochSums(), None)
        # The same dropout masks, exactly (a stacked layer draws seed 0's, then seed 1's) ...
        assert len(masks) == len(stacked_masks) // 2
        assert all(torch.equal(a, b) for a, b in zip(stacked_masks[i::2], masks))
        masks.clear()
        # ... and the same training up to float32 rounding, which the grouped convolutions
        # do differently and which a max-pool window whose two largest values swap
        # amplifies (exactly equal in float64: the test above).
        assert stacked["train_loss"][i] == pytest.approx(row["train_loss"], abs=1e-4)
        assert stacked["train_acc"][i] == pytest.approx(row["train_acc"])
        mine, theirs = run.state(i), trainer.model.state_dict()
        for key in theirs:
            torch.testing.assert_close(mine[key].float(), theirs[key].float(), rtol=0, atol=1e-3, msg=key)


def test_unstackable_model_is_one_line_error():
    with pytest.raises(TinycnnError, match="no stacked form of Conv1d"):
        stack_models([torch.nn.Sequential(torch.nn.Conv1d(1, 2, 3))] * 2)

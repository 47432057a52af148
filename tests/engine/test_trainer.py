"""The trainer end to end on small subsets of real MNIST: exact resume, non-finite losses."""

import pytest
import torch

from tinycnn.engine.checkpoint import load_checkpoint
from tinycnn.engine.rundir import read_metrics, read_run
from tinycnn.engine.trainer import Trainer
from tinycnn.errors import TinycnnError
from tinycnn.recipes import load_recipe


def small(**kw):
    base = dict(subset=600, epochs=2, batch_size=64, eval_batch_size=500, device="cpu")
    return load_recipe("default", **{**base, **kw})


def _weights(path):
    return load_checkpoint(path)["model"]


@pytest.mark.parametrize("stop_at", [(0, 3), (1, 0)])
def test_resume_is_exact(tmp_path, stop_at):
    config = small(deterministic=True, val_size=200)
    Trainer(config, tmp_path / "a", progress=False, log=lambda m: None).fit()

    trainer = Trainer(config, tmp_path / "b", progress=False, log=lambda m: None)

    def stop(epoch, batch):
        if (epoch, batch) == stop_at:
            trainer.request_stop()

    with pytest.raises(KeyboardInterrupt):
        trainer.fit(on_batch=stop)
    assert read_run(tmp_path / "b")["status"] == "interrupted"
    Trainer(config, tmp_path / "b", progress=False, log=lambda m: None).fit(resume=True)

    a, b = _weights(tmp_path / "a" / "last.pt"), _weights(tmp_path / "b" / "last.pt")
    for key in a:
        assert torch.equal(a[key], b[key]), key
    ma, mb = read_metrics(tmp_path / "a"), read_metrics(tmp_path / "b")
    assert [m["test_acc"] for m in ma] == [m["test_acc"] for m in mb]
    assert [m["train_loss"] for m in ma] == pytest.approx([m["train_loss"] for m in mb], rel=1e-12)
    best = load_checkpoint(tmp_path / "b" / "best.pt")
    assert best["val_acc"] == max(m["val_acc"] for m in mb)


def test_non_finite_loss_stops_with_one_line_and_keeps_last_good(tmp_path):
    config = small(epochs=3)
    trainer = Trainer(config, tmp_path / "n", progress=False, log=lambda m: None)

    def poison(epoch, batch):
        if (epoch, batch) == (1, 2):
            with torch.no_grad():
                next(trainer.model.parameters()).fill_(float("nan"))

    with pytest.raises(TinycnnError, match=r"not finite in epoch 2, batch 4, at learning rate") as err:
        trainer.fit(on_batch=poison)
    assert "\n" not in str(err.value)
    state = load_checkpoint(tmp_path / "n" / "last.pt")
    assert state["epochs_done"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert len(read_metrics(tmp_path / "n")) == 1


def test_non_finite_loss_after_a_mid_epoch_resume_names_that_batch_and_its_lr(tmp_path):
    config = small(epochs=3)

    def poisoned(trainer):
        def poison(epoch, batch):
            if (epoch, batch) == (1, 2):
                with torch.no_grad():
                    next(trainer.model.parameters()).fill_(float("nan"))
        return poison

    straight = Trainer(config, tmp_path / "a", progress=False, log=lambda m: None)
    with pytest.raises(TinycnnError) as expected:
        straight.fit(on_batch=poisoned(straight))
    cut = Trainer(config, tmp_path / "b", progress=False, log=lambda m: None)
    with pytest.raises(KeyboardInterrupt):
        cut.fit(on_batch=lambda epoch, batch: cut.request_stop() if (epoch, batch) == (1, 1) else None)
    resumed = Trainer(config, tmp_path / "b", progress=False, log=lambda m: None)
    with pytest.raises(TinycnnError) as err:
        resumed.fit(resume=True, on_batch=poisoned(resumed))
    # the same batch and learning rate as without the interruption (only the directory differs)
    assert str(err.value).replace(str(tmp_path / "b"), "RUN") == str(expected.value).replace(str(tmp_path / "a"), "RUN")


# ---------------------------------------------------------------- recipes


# ---------------------------------------------------------------- budget check


# ---------------------------------------------------------------- checkpoints


class TwoConv(torch.nn.Module):
    """A network of the user's, not in the zoo."""

    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Dropout(0.1),
            torch.nn.Conv2d(4, 10, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
        )

    def forward(self, x):
        return self.features(x)


def _fit(tmp_path, name, model, **kw):
    config = small(epochs=1, subset=256, amp=False, compile=False, **kw)
    return Trainer(config, tmp_path / name, model=model, progress=False, log=lambda m: None).fit()


def test_the_trainer_takes_a_class_or_factory_built_after_the_seed(tmp_path):
    a = _fit(tmp_path, "class", TwoConv)
    b = _fit(tmp_path, "factory", lambda: TwoConv())
    assert read_run(tmp_path / "class")["params"] == sum(p.numel() for p in TwoConv().parameters())
    assert [m["train_loss"] for m in a.metrics] == [m["train_loss"] for m in b.metrics]  # same seed, same start
    c = _fit(tmp_path, "seed-1", TwoConv, seed=1)
    assert c.metrics[0]["train_loss"] != a.metrics[0]["train_loss"]


def test_the_trainer_takes_an_instance_and_trains_it(tmp_path):
    net = TwoConv()
    before = net.features[0].weight.detach().clone()
    _fit(tmp_path, "instance", net)
    assert not torch.equal(net.features[0].weight.detach(), before)  # the user's network, trained
    saved = _weights(tmp_path / "instance" / "last.pt")
    torch.testing.assert_close(saved["features.0.weight"], net.features[0].weight.detach())


def test_a_factory_that_returns_no_module_is_one_line(tmp_path):
    with pytest.raises(TinycnnError, match="returned int, not an nn.Module"):
        _fit(tmp_path, "bad", lambda: 3)

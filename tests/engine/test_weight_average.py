"""The moving average of the weights (`ema`): its formula, and runs that evaluate and keep it."""

import copy

import pytest
import torch
from torch import nn

from tinycnn.cli import main
from tinycnn.engine.checkpoint import load_checkpoint
from tinycnn.engine.rundir import read_metrics
from tinycnn.engine.trainer import Trainer
from tinycnn.engine.weight_average import WeightAverage, warmed_decay
from tinycnn.errors import TinycnnError
from tinycnn.recipes import load_recipe
from tinycnn.seeds.stacked_trainer import StackedTrainer


def small(**kw):
    # fp32 and eager, whatever the machine: the comparisons below are to float32 rounding.
    base = dict(subset=256, epochs=2, batch_size=64, eval_batch_size=128, val_size=128, device="cpu", threads=1, amp=False, compile=False, ema=0.0)
    return load_recipe("default", **{**base, **kw})


def _quiet(_):
    pass


def test_warm_up_then_the_decay():
    assert warmed_decay(0.999, 1) == pytest.approx(2 / 11)
    assert warmed_decay(0.999, 90) == pytest.approx(91 / 100)
    assert warmed_decay(0.9, 90) == 0.9
    with pytest.raises(ValueError):
        WeightAverage(nn.Linear(2, 2), 1.0)


def test_the_average_follows_its_formula_and_leaves_the_model_alone():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    twin = copy.deepcopy(model)
    average = WeightAverage(model, decay=0.8)
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    optimizers = [torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9) for m in (model, twin)]
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 3, (16,))
    for n in range(1, 31):
        for m, opt in zip((model, twin), optimizers):
            opt.zero_grad()
            nn.functional.cross_entropy(m(x + 0.1 * n), y).backward()
            opt.step()
        average.update()
        d = warmed_decay(0.8, n)
        for k, v in model.state_dict().items():
            expected[k] = d * expected[k] + (1 - d) * v if v.is_floating_point() else v.clone()
    assert average.updates == 30
    got = average.model.state_dict()
    for k, v in expected.items():
        torch.testing.assert_close(got[k], v, msg=k)
    assert got["1.num_batches_tracked"] == 30
    # The average never feeds back: the model trains exactly as its twin without one.
    for (k, a), b in zip(model.state_dict().items(), twin.state_dict().values()):
        assert torch.equal(a, b), k
    assert not any(p.requires_grad for p in average.model.parameters())


def test_a_run_with_the_average_trains_the_same_weights_and_keeps_the_average(tmp_path, capsys):
    plain, averaged = tmp_path / "plain", tmp_path / "averaged"
    Trainer(small(), plain, progress=False, log=_quiet).fit()
    Trainer(small(ema=0.9), averaged, progress=False, log=_quiet).fit()
    mp, ma = read_metrics(plain), read_metrics(averaged)
    assert [m["train_loss"] for m in ma] == [m["train_loss"] for m in mp]
    assert [m["raw_test_acc"] for m in ma] == [m["test_acc"] for m in mp]
    assert [m["raw_val_acc"] for m in ma] == [m["val_acc"] for m in mp]
    assert "raw_test_acc" not in mp[0]
    state, plain_state = load_checkpoint(averaged / "last.pt"), load_checkpoint(plain / "last.pt")
    assert plain_state["average"] is None
    for k, v in plain_state["model"].items():
        assert torch.equal(state["model"][k], v), k
    assert state["average"]["updates"] == 2 * 4  # 256 training images, batch 64, 2 epochs
    differs = [k for k, v in state["average"]["model"].items() if v.is_floating_point() and not torch.equal(v, state["model"][k])]
    assert differs
    # `tinycnn eval` recomputes the logged accuracy of the average, not of the trained weights.
    capsys.readouterr()
    assert main(["eval", str(averaged), "--device", "cpu"]) == 0
    assert f"test accuracy {ma[-1]['test_acc']:.2f}%" in capsys.readouterr().out
    best = load_checkpoint(averaged / "best.pt")
    assert best["val_acc"] == max(m["val_acc"] for m in ma)
    if best["epoch"] == 2:
        for k, v in state["average"]["model"].items():
            assert torch.equal(best["model"][k], v), k


def test_the_report_predicts_with_the_average_and_plots_both_curves(tmp_path, monkeypatch):
    import tinycnn.analysis.plots as plots
    from tinycnn.analysis.report import predict, write_report

    run = tmp_path / "averaged"
    Trainer(small(ema=0.9), run, progress=False, log=_quiet).fit()
    p = predict(small(ema=0.9), run / "last.pt")
    assert 100.0 * (p["pred"] == p["labels"]).mean() == pytest.approx(read_metrics(run)[-1]["test_acc"], abs=1e-9)
    legends = []
    save = plots.save

    def keep_legends(fig, path):
        legends.extend(t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts())
        return save(fig, path)

    monkeypatch.setattr(plots, "save", keep_legends)
    write_report(run, log=_quiet)
    assert "test, weight average" in legends and "test, trained weights (no average)" in legends


@pytest.mark.parametrize("stop_at", [(0, 1), (1, 0)])
def test_an_interrupted_run_resumes_its_average_exactly(tmp_path, stop_at):
    config = small(ema=0.9, deterministic=True)
    Trainer(config, tmp_path / "whole", progress=False, log=_quiet).fit()
    cut = Trainer(config, tmp_path / "cut", progress=False, log=_quiet)
    with pytest.raises(KeyboardInterrupt):
        cut.fit(on_batch=lambda epoch, b: cut.request_stop() if (epoch, b) == stop_at else None)
    Trainer(config, tmp_path / "cut", progress=False, log=_quiet).fit(resume=True)
    a, b = load_checkpoint(tmp_path / "whole" / "last.pt"), load_checkpoint(tmp_path / "cut" / "last.pt")
    assert a["average"]["updates"] == b["average"]["updates"]
    for k, v in a["average"]["model"].items():
        assert torch.equal(b["average"]["model"][k], v), k
    mw, mc = read_metrics(tmp_path / "whole"), read_metrics(tmp_path / "cut")
    for key in ("train_loss", "val_acc", "raw_val_acc", "test_acc", "raw_test_acc"):
        assert [m[key] for m in mw] == [m[key] for m in mc], key


def test_stacked_seeds_keep_each_seeds_own_average(tmp_path):
    # As in test_stacked_trainer: a constant small learning rate keeps the stacked and the
    # separate runs within float rounding of each other; without dropout, whose masks
    # stacked seeds draw together, not as separate runs do.
    config = small(ema=0.9, scheduler="none", lr=0.01, subset=128, dropout=0.0)
    StackedTrainer(config, [0, 1], tmp_path / "stacked", progress=False, log=_quiet).fit()
    for seed in (0, 1):
        Trainer(load_recipe("default", **{**config.to_dict(), "seed": seed}), tmp_path / f"alone-{seed}", progress=False, log=_quiet).fit()
        mine, theirs = load_checkpoint(tmp_path / "stacked" / f"seed-{seed}" / "last.pt"), load_checkpoint(tmp_path / f"alone-{seed}" / "last.pt")
        assert mine["average"]["updates"] == theirs["average"]["updates"] == 4
        for k, v in theirs["average"]["model"].items():
            torch.testing.assert_close(mine["average"]["model"][k].float(), v.float(), rtol=0, atol=1e-3, msg=k)
        a, b = read_metrics(tmp_path / "stacked" / f"seed-{seed}"), read_metrics(tmp_path / f"alone-{seed}")
        assert a[0].keys() == b[0].keys()
        for ra, rb in zip(a, b):
            for key in ("val_loss", "test_loss"):
                assert ra[key] == pytest.approx(rb[key], abs=1e-4), key


def test_a_decay_outside_0_1_is_one_line(tmp_path, capsys):
    with pytest.raises(TinycnnError, match=r"ema must be in \[0, 1\), got 1.0"):
        small(ema=1.0).validate()
    assert main(["train", "--ema", "1", "--subset", "64", "--out", str(tmp_path / "r"), "--no-progress"]) != 0
    err = capsys.readouterr().err
    assert "ema must be in [0, 1)" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()

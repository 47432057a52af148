"""`tinycnn train --seeds ... --stack`: several seeds as one network, written as separate runs."""

import copy
import json
import os

import pytest
import torch

from tinycnn.cli import main
from tinycnn.engine.checkpoint import load_checkpoint
from tinycnn.engine.rundir import read_metrics, read_run
from tinycnn.engine.trainer import Trainer
from tinycnn.errors import TinycnnError
from tinycnn.recipes import load_recipe
from tinycnn.seeds.stacked import StackedRun
from tinycnn.seeds.stacked_trainer import StackedTrainer


def small(**kw):
    # fp32 and eager, whatever the machine: the comparisons below are to float32 rounding.
    base = dict(subset=256, epochs=2, batch_size=64, eval_batch_size=128, device="cpu", threads=1, amp=False, compile=False)
    return load_recipe("default", **{**base, **kw})


def _quiet(_):
    pass


def _weights(path):
    return load_checkpoint(path)["model"]


def test_stacked_seeds_write_the_runs_of_separate_seeds(tmp_path, capsys):
    stacked, separate = tmp_path / "stacked", tmp_path / "separate"
    # A constant, small learning rate: with OneCycle's peak on 256 images, changing only the
    # thread count of a separate run moves its weights by 1e-2 (ties in max-pool windows of
    # the flat background break the other way), which would hide what this test looks for.
    args = ["train", "--subset", "128", "--epochs", "2", "--batch-size", "64", "--val-size", "200", "--threads", "1",
            "--scheduler", "none", "--lr", "0.01", "--seeds", "0,1", "--no-progress", "--no-amp",  # fp32 on any machine
            "--dropout", "0"]  # stacked seeds draw their masks together, not as separate runs do
    assert main([*args, "--stack", "--out", str(stacked)]) == 0
    out = capsys.readouterr().out
    assert "seeds 0, 1 stacked in one network" in out and "of 2 seeds meet era-s7" in out
    assert main([*args, "--out", str(separate)]) == 0  # on the CPU the default is one after another
    assert json.loads((separate / "seeds.json").read_text())["stacked"] is False
    assert json.loads((stacked / "seeds.json").read_text()) == {"seeds": [0, 1], "stacked": True}
    for seed in (0, 1):
        mine, theirs = stacked / f"seed-{seed}", separate / f"seed-{seed}"
        for name in ("config.toml", "metrics.jsonl", "run.json", "last.pt", "best.pt"):
            assert (mine / name).exists(), name
        assert f"seed = {seed}" in (mine / "config.toml").read_text()
        run = read_run(mine)
        assert run["status"] == "finished" and run["seed"] == seed and run["stacked_seeds"] == [0, 1]
        assert run["params"] == read_run(theirs)["params"] == 6750
        a, b = read_metrics(mine), read_metrics(theirs)
        assert [m["epoch"] for m in a] == [1, 2] and a[0].keys() == b[0].keys()
        for ma, mb in zip(a, b):  # the same run up to float rounding (grouped convolutions)
            for key in ("train_loss", "val_loss", "test_loss", "lr"):
                assert ma[key] == pytest.approx(mb[key], abs=1e-4), key
        wa, wb = _weights(mine / "last.pt"), _weights(theirs / "last.pt")
        assert wa.keys() == wb.keys()
        for key in wb:
            torch.testing.assert_close(wa[key].float(), wb[key].float(), rtol=0, atol=1e-3, msg=key)
        best = load_checkpoint(mine / "best.pt")
        assert best["val_acc"] == max(m["val_acc"] for m in a)
    # Seeds differ from each other, and the summary and the checks read the runs as any run.
    assert not torch.equal(_weights(stacked / "seed-0" / "last.pt")["c1.0.weight"], _weights(stacked / "seed-1" / "last.pt")["c1.0.weight"])
    summary = json.loads((stacked / "summary.json").read_text())
    assert [r["seed"] for r in summary["runs"]] == [0, 1]
    assert main(["check", str(stacked / "seed-1")]) == 1
    assert "FAIL" in capsys.readouterr().out  # 256 images do not reach 99.4%
    assert main(["train", "--resume", str(stacked), "--no-progress"]) == 0  # resumes as a stacked run
    assert "already finished (2 epochs)" in capsys.readouterr().out
    assert read_run(stacked / "seed-0")["status"] == "finished"


def test_interrupted_stacked_run_resumes_exactly(tmp_path):
    config = small(epochs=2, deterministic=True)
    whole = StackedTrainer(config, [0, 1], tmp_path / "whole", progress=False, log=_quiet)
    whole.fit()
    cut = StackedTrainer(config, [0, 1], tmp_path / "cut", progress=False, log=_quiet)
    with pytest.raises(KeyboardInterrupt):
        cut.fit(on_batch=lambda epoch, b: cut.request_stop() if (epoch, b) == (1, 1) else None)
    assert read_run(tmp_path / "cut" / "seed-0")["status"] == "interrupted"
    assert load_checkpoint(tmp_path / "cut" / "stacked.pt")["partial"]["batch"] == 2
    assert len(read_metrics(tmp_path / "cut" / "seed-1")) == 1
    StackedTrainer(config, [0, 1], tmp_path / "cut", progress=False, log=_quiet).fit(resume=True)
    for seed in (0, 1):
        a, b = read_metrics(tmp_path / "whole" / f"seed-{seed}"), read_metrics(tmp_path / "cut" / f"seed-{seed}")
        assert [m["train_loss"] for m in a] == [m["train_loss"] for m in b]
        assert [m["test_acc"] for m in a] == [m["test_acc"] for m in b]
        wa, wb = _weights(tmp_path / "whole" / f"seed-{seed}" / "last.pt"), _weights(tmp_path / "cut" / f"seed-{seed}" / "last.pt")
        for key in wa:
            assert torch.equal(wa[key], wb[key]), key
        assert read_run(tmp_path / "cut" / f"seed-{seed}")["status"] == "finished"


def test_a_seed_of_a_stacked_run_continues_alone_from_its_last_pt(tmp_path):
    """Each seed's last.pt is a Trainer checkpoint: weights and optimizer state."""
    config = small(epochs=2, dropout=0.0)  # the masks of stacked seeds are not a separate run's
    whole = StackedTrainer(config, [3, 5], tmp_path / "whole", progress=False, log=_quiet)
    whole.fit()
    cut = StackedTrainer(config, [3, 5], tmp_path / "cut", progress=False, log=_quiet)
    with pytest.raises(KeyboardInterrupt):
        cut.fit(on_batch=lambda epoch, b: cut.request_stop() if (epoch, b) == (1, 0) else None)
    seed_dir = tmp_path / "cut" / "seed-5"
    Trainer(load_recipe("default", **{**config.to_dict(), "seed": 5}), seed_dir, progress=False, log=_quiet).fit(resume=True)
    a, b = read_metrics(tmp_path / "whole" / "seed-5"), read_metrics(seed_dir)
    assert len(b) == 2
    assert b[1]["train_loss"] == pytest.approx(a[1]["train_loss"], abs=1e-4)
    wa, wb = _weights(tmp_path / "whole" / "seed-5" / "last.pt"), _weights(seed_dir / "last.pt")
    for key in wa:
        torch.testing.assert_close(wb[key].float(), wa[key].float(), rtol=0, atol=1e-4, msg=key)


def test_non_finite_loss_names_the_seed(tmp_path):
    trainer = StackedTrainer(small(epochs=2), [0, 1], tmp_path / "n", progress=False, log=_quiet)

    def poison(epoch, batch):  # seed 1's half of the first convolution only
        if (epoch, batch) == (1, 0):
            with torch.no_grad():
                weight = next(trainer.run.model.parameters())
                weight[weight.shape[0] // 2:] = float("nan")

    with pytest.raises(TinycnnError, match=r"not finite for seed 1 in epoch 2, batch 2") as err:
        trainer.fit(on_batch=poison)
    assert "\n" not in str(err.value)
    assert load_checkpoint(tmp_path / "n" / "stacked.pt")["epochs_done"] == 1
    assert len(read_metrics(tmp_path / "n" / "seed-0")) == 1


def test_stack_flag_errors(tmp_path, capsys):
    assert main(["train", "--stack", "--subset", "64", "--out", str(tmp_path / "x")]) == 1
    assert "give them with --seeds" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_stacked_run_never_overwrites_trained_seeds(tmp_path):
    config = small(epochs=1)
    StackedTrainer(config, [0, 1], tmp_path / "r", progress=False, log=_quiet).fit()
    with pytest.raises(TinycnnError, match="holds seeds \\[0, 1\\], not \\[0, 2\\]"):
        StackedTrainer(config, [0, 2], tmp_path / "r", progress=False, log=_quiet).fit(resume=True)
    (tmp_path / "r" / "stacked.pt").unlink()
    before = (tmp_path / "r" / "seed-0" / "last.pt").read_bytes()
    with pytest.raises(TinycnnError, match="already holds a trained seed"):
        StackedTrainer(config, [0, 1], tmp_path / "r", progress=False, log=_quiet).fit()
    assert (tmp_path / "r" / "seed-0" / "last.pt").read_bytes() == before


def test_a_stacked_run_resumes_exactly_from_its_state():
    config = small(epochs=2, deterministic=True)
    first = StackedRun(config, [0, 1])
    first.epoch(0)
    saved = copy.deepcopy(first.resume_state())
    expected = first.epoch(1)["train_loss"]
    second = StackedRun(config, [0, 1])
    second.load_resume_state(saved)
    assert second.epoch(1)["train_loss"] == expected


@pytest.mark.skipif(not os.environ.get("TINYCNN_TEST_COMPILE"), reason="compiling takes a minute on 2 cores; set TINYCNN_TEST_COMPILE=1")
def test_compiled_stacked_run_with_a_smaller_last_batch():
    config = small(subset=160, epochs=1, scheduler="none", lr=0.01)  # batches of 64, 64, 32
    eager = StackedRun(config, [0, 1]).epoch(0)
    compiled = StackedRun(load_recipe("default", **{**config.to_dict(), "compile": True}), [0, 1]).epoch(0)
    assert compiled["train_loss"] == pytest.approx(eager["train_loss"], abs=1e-4)

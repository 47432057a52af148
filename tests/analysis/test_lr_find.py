"""The learning-rate range test: it leaves model, optimizer and random state exactly as it found
them, follows its stated schedule, smoothing and stopping rule, agrees with the torch-lr-finder
package where that is installed; and the lr-find / lr-sweep commands write their figures."""

import copy
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from tinycnn.analysis import plots
from tinycnn.analysis.lr_find import RangeTest, cycle, lr_ramp, range_test, suggest
from tinycnn.cli import main
from tinycnn.data.loader import BatchLoader
from tinycnn.models import create_model


def assert_png(path, size):
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (round(size[0] * plots.DPI), round(size[1] * plots.DPI))
        assert (np.asarray(im.convert("L"), dtype=float) / 255).std() > 0.02


@pytest.fixture(scope="module")
def loader(mnist_splits):
    images, labels = mnist_splits["train"]
    return BatchLoader(images[:512], labels[:512], 64, shuffle=True, seed=0)


def fresh(seed=0):
    torch.manual_seed(seed)
    model = create_model("tiny-3k")
    return model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def test_weights_optimizer_and_rng_are_restored(loader):
    model, optimizer = fresh()
    x, y = next(loader.epoch(5))  # one real step first, so momentum buffers and BN statistics exist
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
    model.eval()
    weights = copy.deepcopy(model.state_dict())
    opt_state = copy.deepcopy(optimizer.state_dict())
    rng = torch.get_rng_state()

    result = range_test(model, optimizer, cycle(loader), start=1e-4, end=10, steps=12)

    assert len(result.lrs) >= 5
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())  # BN running stats included
    after = optimizer.state_dict()
    assert after["param_groups"] == opt_state["param_groups"]  # lr back to 0.01
    assert all(torch.equal(opt_state["state"][i]["momentum_buffer"], s["momentum_buffer"]) for i, s in after["state"].items())
    assert torch.equal(torch.get_rng_state(), rng)
    assert not model.training


def test_schedule_smoothing_and_stop_rule(loader):
    model, optimizer = fresh()
    result = range_test(model, optimizer, cycle(loader), start=1e-2, end=1e3, steps=25, smooth=0.3, diverge=1.5)
    n = len(result.lrs)
    assert result.lrs == pytest.approx(lr_ramp(1e-2, 1e3, 25)[:n])
    assert lr_ramp(1e-2, 1e3, 25)[-1] == pytest.approx(1e3) and lr_ramp(1e-2, 1e3, 25)[12] == pytest.approx(1e-2 * 1e5 ** (12 / 24))
    s = [result.losses[0]]
    for loss in result.losses[1:]:
        s.append(0.3 * loss + 0.7 * s[-1])
    assert result.smoothed == pytest.approx(s)
    # Rates up to 1000 must blow up: it stops at the first point past 1.5x the best, or on a non-finite loss.
    assert result.stopped != "reached the end rate" and n < 25
    if result.stopped.startswith("diverged"):
        assert s[-1] > 1.5 * min(s) and all(v <= 1.5 * min(s[: i + 1]) for i, v in enumerate(s[:-1]))


def test_suggestions_on_a_known_curve():
    lrs = lr_ramp(1e-5, 1, 101)
    # A smooth drop centred at lr = 1e-2 (steepest there), lowest near the end.
    smoothed = [2.5 - 2 / (1 + math.exp(-3 * (math.log10(lr) + 2))) for lr in lrs]
    marks = suggest(RangeTest(lrs=lrs, losses=smoothed, smoothed=smoothed))
    assert marks["steepest"] == pytest.approx(1e-2, rel=0.15)
    assert marks["min/10"] == pytest.approx(lrs[-1] / 10)
    short = suggest(RangeTest(lrs=lrs[:12], losses=smoothed[:12], smoothed=smoothed[:12]))
    assert "steepest" not in short and "min/10" in short


def test_agrees_with_torch_lr_finder(loader):
    """Same model, same batches: the package's (lr, smoothed loss) history equals ours."""
    lr_finder = pytest.importorskip("torch_lr_finder")
    batches = list(loader.epoch(0)) + list(loader.epoch(1))
    model, optimizer = fresh()
    ours = range_test(model, optimizer, iter(batches), start=1e-4, end=1, steps=15, smooth=0.05, diverge=4)

    class Batches(lr_finder.TrainDataLoaderIter):
        pass

    model, optimizer = fresh()
    finder = lr_finder.LRFinder(model, optimizer, torch.nn.functional.cross_entropy)
    finder.range_test(Batches(batches), start_lr=1e-4, end_lr=1, num_iter=15, smooth_f=0.05, diverge_th=4)
    assert finder.history["lr"] == pytest.approx(ours.lrs)
    assert finder.history["loss"] == pytest.approx(ours.smoothed, rel=1e-5)


def test_lr_find_command(tmp_path, capsys, monkeypatch):
    out = tmp_path / "find.png"
    code = main(["lr-find", "--recipe", "era-s7-step6", "--subset", "512", "--batch-size", "64", "--steps", "20",
                 "--device", "cpu", "--out", str(out)])
    assert code == 0
    assert_png(out, plots.SIZE_LR_FIND)
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["suggestions"]["min/10"] > 0 and len(record["lrs"]) == len(record["smoothed"]) > 0
    assert "suggested lr:" in capsys.readouterr().out


def test_lr_sweep_command(tmp_path, monkeypatch):
    out = tmp_path / "sweep.png"
    code = main(["lr-sweep", "--recipe", "era-s7-step6", "--lrs", "0.05,0.5", "--epochs", "1", "--subset", "256",
                 "--batch-size", "64", "--device", "cpu", "--out", str(out)])
    assert code == 0
    assert_png(out, plots.SIZE_LR_SWEEP)
    curves = json.loads(out.with_suffix(".json").read_text())["curves"]
    assert [c["lr"] for c in curves] == [0.05, 0.5]
    assert all(len(c["losses"]) == 4 or c["diverged_at"] for c in curves)  # 256 images / 64
    # Same initial weights and batches for every rate: the first loss is the same.
    assert curves[0]["losses"][0] == pytest.approx(curves[1]["losses"][0])


@pytest.mark.parametrize("argv", [
    ["lr-find", "--start", "1", "--end", "0.1"],
    ["lr-find", "--steps", "1"],
    ["lr-sweep", "--lrs", "0.1,fast"],
    ["lr-sweep", "--lrs", "0.1,-1"],
    ["lr-find", "--recipe", "no-such-recipe"],
])
def test_bad_arguments_are_one_line(argv, capsys):
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("tinycnn: error:") and "\n" not in err

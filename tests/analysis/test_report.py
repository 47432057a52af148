"""tinycnn report and tinycnn compare on tiny real runs: figures are real PNGs of the promised
size with something drawn on them, report.md holds its tables, and the numbers recomputed
from last.pt agree with the ones logged during training."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from tinycnn.analysis import plots
from tinycnn.analysis.report import (
    FIGURES,
    compare,
    confusion,
    lr_schedule,
    predict,
    unique_labels,
    write_report,
)
from tinycnn.cli import main
from tinycnn.cli.train import train_recipe
from tinycnn.config import config_from_dict
from tinycnn.engine.rundir import open_run, read_metrics
from tinycnn.engine.trainer import Trainer
from tinycnn.errors import TinycnnError
from tinycnn.recipes import load_recipe

SIZES = {
    "curves": plots.SIZE_CURVES,
    "lr": plots.SIZE_LR,
    "misclassified": plots.SIZE_GRID,
    "confusion": plots.SIZE_CONFUSION,
}


def assert_png(path, size):
    """A PNG of exactly size * DPI pixels that is not one flat colour."""
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.size == (round(size[0] * plots.DPI), round(size[1] * plots.DPI))
        pixels = np.asarray(im.convert("L"), dtype=float) / 255
    assert pixels.std() > 0.02, f"{path} looks blank"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A single run with a validation split and a two-seed run, both a few seconds long."""
    root = tmp_path_factory.mktemp("runs")
    single = root / "single"
    config = load_recipe("era-s7-step6", subset=300, epochs=2, val_size=100, device="cpu")
    Trainer(config, single, progress=False, log=lambda s: None).fit()
    multi = root / "multi"
    train_recipe("era-s7-step6", {"subset": 200, "epochs": 2, "device": "cpu"}, seeds=[0, 1], out=multi, progress=False)
    return single, multi


def test_report_single_run(runs):
    single, _ = runs
    path = write_report(single, log=lambda s: None)
    text = path.read_text()
    for key, name in FIGURES.items():
        assert_png(single / name, SIZES[key])
        assert f"]({name})" in text
    for heading in ("## Result", "## Budget check: era-s7", "## Training curves", "## Learning rate", "## Errors on the test set", "## Model", "## Recipe", "## Versions and timings"):
        assert heading in text
    assert "| layer | type | output | params | RF | jump | MACs |" in text  # the layer table with receptive fields
    assert "| c1.0 | Conv2d | 10x28x28 | 90 | 3 | 1 |" in text
    assert '```toml\nname = "era-s7-step6"' in text
    assert "| parameters | < 8,000 | 6,750 | PASS |" in text
    assert "| full train and test sets | no --subset | subset | FAIL |" in text
    assert "| torch |" in text and "| training time |" in text


def test_last_pt_predictions_match_logged_accuracy(runs):
    single, _ = runs
    view = open_run(single)
    p = predict(view.config, single / "last.pt")
    logged = read_metrics(single)[-1]["test_acc"]
    assert 100.0 * (p["pred"] == p["labels"]).mean() == pytest.approx(logged, abs=1e-9)
    assert np.all((p["confidence"] > 0) & (p["confidence"] <= 1))


def test_lr_schedule_is_rebuilt_exactly(runs):
    single, _ = runs
    view = open_run(single)
    schedule, steps = lr_schedule(view.config, view.metrics[0])
    assert steps == 3  # the first 300 of the images left after carving validation, batch 128
    assert schedule is not None and len(schedule) == 2 * steps
    assert schedule[0] == pytest.approx(view.config.max_lr / view.config.div_factor)
    wrong = config_from_dict({**view.config.to_dict(), "max_lr": 0.5})
    assert lr_schedule(wrong, view.metrics[0])[0] is None  # does not match the logs: not drawn


def test_report_multi_seed(runs):
    _, multi = runs
    text = write_report(multi, log=lambda s: None).read_text()
    assert "2 seeds (0, 1)" in text
    assert "seeds meet era-s7" in text  # stats.render_summary's per-seed table
    assert "| parameters | < 8,000 | 6,750 | 2 of 2 seeds |" in text
    assert "| test accuracy >= 99.4% to the end, from | never |" in text  # 300 images
    assert "median final test accuracy" in text
    for key, name in FIGURES.items():
        assert_png(multi / name, SIZES[key])


def test_confusion_matrix_counts_and_other_column():
    labels = np.array([0, 0, 1, 2, 2, 2])
    pred = np.array([0, 1, 1, 2, 12, 0])
    m = confusion(labels, pred)
    assert m.shape == (10, 11)  # a prediction of 12 (16-logit models) goes to "other"
    assert m[0, 0] == 1 and m[0, 1] == 1 and m[2, 10] == 1 and m.sum() == 6
    assert confusion(labels, np.minimum(pred, 9)).shape == (10, 10)


def test_compare_two_runs(runs, tmp_path):
    single, multi = runs
    png = tmp_path / "cmp.png"
    table = compare([single, multi], png)
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["run", "model", "params"]
    assert lines[1].startswith("single") and lines[2].startswith("multi")
    assert "6,750" in lines[1] and " 2 " in lines[2]  # two seeds
    assert lines[0].endswith("target held from") and lines[1].endswith("never")  # 300 images do not reach 99.4%
    assert_png(png, plots.SIZE_OVERLAY)


def test_compare_says_from_which_epoch_the_target_held(runs, tmp_path):
    single, _ = runs
    run = tmp_path / "held"
    shutil.copytree(single, run)
    metrics = read_metrics(run)
    for m, acc in zip(metrics, (99.1, 99.45)):
        m.update(test_acc=acc, train_seconds=20.0, eval_seconds=1.0)
    (run / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metrics))
    assert compare([run], tmp_path / "c.png").splitlines()[1].endswith("epoch 2, after 42 s")


def test_compare_cli_writes_default_file(runs, tmp_path, monkeypatch, capsys):
    single, multi = runs
    monkeypatch.chdir(tmp_path)
    assert main(["compare", str(single), str(multi)]) == 0
    assert_png(tmp_path / "compare.png", plots.SIZE_OVERLAY)
    assert "final test %" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["report", "compare"])
def test_bad_run_dir_is_one_line(command, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    for target in (tmp_path / "missing", tmp_path / "empty"):
        assert main([command, str(target)]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("tinycnn: error:") and "\n" not in err


def test_open_run_without_epochs(tmp_path):
    (tmp_path / "seeds.json").write_text('{"seeds": [0]}')
    with pytest.raises(TinycnnError, match="no seed has started"):
        open_run(tmp_path)


def test_time_to_target_row():
    from tinycnn.analysis.report import _held_row

    def outcome(epoch, seconds, stacked=False):
        return {"target_held_from_epoch": epoch, "seconds_to_target": seconds, "stacked": stacked}

    assert _held_row([outcome(12, 321.4)]) == "epoch 12, after 321 s"
    assert _held_row([outcome(12, 300.0), outcome(None, None), outcome(14, 400.0)]) == "2 of 3 seeds: epochs 12, 14; 350 s (mean of 2; 300-400)"
    assert _held_row([outcome(None, None)]) == "never"
    assert _held_row([outcome(10, 800.0, True), outcome(13, 900.0, True)]).endswith("(stacked seeds: the time of all of them)")


def test_compare_draws_parameters_against_accuracy_over_seeds(runs, tmp_path, monkeypatch):
    single, multi = runs
    drawn = {}
    real = plots.plot_frontier

    def spy(path, points, **kwargs):
        drawn.update(points=points, **kwargs)
        return real(path, points, **kwargs)

    monkeypatch.setattr(plots, "plot_frontier", spy)
    assert main(["compare", str(single), str(multi), "--out", str(tmp_path / "c.png"), "--frontier", str(tmp_path / "f.png")]) == 0
    assert_png(tmp_path / "f.png", plots.SIZE_FRONTIER)
    final = lambda run: read_metrics(run)[-1]["test_acc"]
    assert drawn["points"] == [
        {"name": "single", "params": 6750, "accs": [final(single)]},
        {"name": "multi", "params": 6750, "accs": [final(multi / "seed-0"), final(multi / "seed-1")]},
    ]
    assert drawn["budgets"] == [8000]


def test_runs_are_labelled_by_the_fewest_parts_that_tell_them_apart(tmp_path):
    paths = [tmp_path / "default", tmp_path / "a" / "confirm" / "best-1", tmp_path / "b" / "confirm" / "best-1"]
    assert unique_labels(paths) == ["default", "a/confirm/best-1", "b/confirm/best-1"]
    assert unique_labels([tmp_path / "x", tmp_path / "y"]) == ["x", "y"]
    assert unique_labels([tmp_path / "default", tmp_path / "s" / "confirm" / "trial-20"]) == ["default", "s/confirm/trial-20"]

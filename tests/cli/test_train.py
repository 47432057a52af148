"""`tinycnn train` from the command line, on small subsets of real MNIST."""

import json

import pytest
import torch

from tinycnn.cli import main
from tinycnn.cli.args import parse_seeds
from tinycnn.engine.checkpoint import load_checkpoint
from tinycnn.engine.rundir import read_config, read_metrics, read_run
from tinycnn.errors import TinycnnError


def _weights(path):
    return load_checkpoint(path)["model"]


def test_cli_end_to_end(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--subset", "2000", "--epochs", "1", "--out", str(out), "--no-progress"])
    assert code == 0
    text = capsys.readouterr().out
    assert "6,750 parameters" in text and "FAIL" in text and "budget era-s7" in text
    for name in ("config.toml", "metrics.jsonl", "run.json", "last.pt"):
        assert (out / name).exists(), name
    metrics = read_metrics(out)
    assert len(metrics) == 1
    m = metrics[0]
    for key in ("train_loss", "train_acc", "test_loss", "test_acc", "lr", "train_seconds", "images_per_second", "eval_seconds"):
        assert key in m
    assert m["test_acc"] > 20  # learnt something in one epoch of 2,000 images
    run = read_run(out)
    assert run["status"] == "finished" and run["params"] == 6750 and run["torch"] == torch.__version__
    assert not (out / "best.pt").exists()  # no validation split, so no "best" is chosen
    # The check agrees, and says why it fails.
    assert main(["check", str(out)]) == 1
    assert "subset" in capsys.readouterr().out


def test_flags_override_recipe_and_are_saved(tmp_path):
    out = tmp_path / "r"
    assert main(["train", "--subset", "300", "--epochs", "1", "--lr", "0.05", "--scheduler", "none", "--rotation", "0", "--out", str(out), "--no-progress"]) == 0
    text = (out / "config.toml").read_text()
    assert 'scheduler = "none"' in text and "lr = 0.05" in text and "rotation = 0.0" in text


def test_seeds_summary_and_eval(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["train", "--subset", "300", "--epochs", "1", "--seeds", "0,1", "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [r["seed"] for r in summary["runs"]] == [0, 1] and summary["seeds"] == 2
    assert summary["final_test_acc"]["min"] <= summary["final_test_acc"]["mean"] <= summary["final_test_acc"]["max"]
    assert "of 2 seeds meet era-s7" in capsys.readouterr().out
    # Different seeds, different weights.
    w0, w1 = _weights(out / "seed-0" / "last.pt"), _weights(out / "seed-1" / "last.pt")
    assert not all(torch.equal(w0[k], w1[k]) for k in w0)
    # eval recomputes what training logged.
    assert main(["eval", str(out / "seed-0"), "--device", "cpu"]) == 0
    logged = read_metrics(out / "seed-0")[-1]["test_acc"]
    assert f"test accuracy {logged:.2f}%" in capsys.readouterr().out


def test_refuses_to_overwrite_a_run(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", "--subset", "200", "--epochs", "1", "--out", str(out), "--no-progress"]) == 0
    assert main(["train", "--subset", "200", "--epochs", "1", "--out", str(out), "--no-progress"]) == 1
    assert "--resume" in capsys.readouterr().err


def test_parse_seeds():
    assert parse_seeds("0,1,2") == [0, 1, 2]
    assert parse_seeds("0..3") == [0, 1, 2, 3]
    assert parse_seeds("0..1,7") == [0, 1, 7]
    for bad in ("a", "3..1", "1,1"):
        with pytest.raises(TinycnnError):
            parse_seeds(bad)


def test_bad_flag_value_is_one_line(capsys):
    assert main(["train", "--epochs", "0", "--no-progress"]) == 1
    assert capsys.readouterr().err.strip() == "tinycnn: error: epochs must be >= 1, got 0"
    with pytest.raises(SystemExit) as exc:
        main(["train", "--optimizer", "rmsprop"])
    assert exc.value.code == 2


def test_unknown_model_fails_before_anything_is_written(tmp_path, capsys):
    assert main(["train", "--model", "era-s7-675", "--out", str(tmp_path / "r"), "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "did you mean era-s7-6750" in captured.err
    assert not (tmp_path / "r").exists()


def test_resuming_a_finished_run_leaves_it_finished(tmp_path, capsys):
    out = tmp_path / "done"
    assert main(["train", "--subset", "256", "--epochs", "1", "--out", str(out), "--no-progress"]) == 0
    before = (out / "last.pt").read_bytes()
    assert main(["train", "--resume", str(out), "--no-progress"]) == 0
    assert "already finished (1 epochs)" in capsys.readouterr().out
    assert read_run(out)["status"] == "finished"
    assert (out / "last.pt").read_bytes() == before


def test_execution_flags_reach_the_saved_config(tmp_path):
    out = tmp_path / "run"
    code = main(["train", "--subset", "300", "--epochs", "1", "--out", str(out), "--no-progress",
                 "--eval-batch-size", "100", "--no-cuda-graphs", "--no-fast-dropout"])
    assert code == 0
    config = read_config(out)
    assert (config.eval_batch_size, config.cuda_graphs, config.fast_dropout) == (100, False, False)

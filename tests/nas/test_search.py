"""`tinycnn search` at a tiny size: Optuna locally, in two processes, on an RDB, and on a real
local Ray instance; budgets checked before training, the test set never read, resumption,
the outputs, spaces of the user's, and --confirm."""

import csv
import json
import shutil
from pathlib import Path

import pytest

import tinycnn
from tinycnn.cli import main
from tinycnn.nas.outputs import markdown
from tinycnn.nas.trial import Plan, earlier_twin, first_prunable_epoch, may_stop_after
from tinycnn.recipes import load_recipe

TINY = ["--subset", "300", "--epochs", "2", "--val-size", "200", "--no-compile", "--no-amp", "--device", "cpu"]


def trials(directory: Path) -> list[dict]:
    with open(directory / "trials.csv") as f:
        return list(csv.DictReader(f))


@pytest.fixture(autouse=True)
def _no_test_set(monkeypatch):
    """A search chooses on the validation split: reading the test set fails it."""
    from tinycnn.data import datasets

    real = datasets.load

    def load(dataset="mnist", split="train", *args, **kwargs):
        if split == "test" and getattr(_no_test_set, "searching", False):
            raise AssertionError("a search read the test set")
        return real(dataset, split, *args, **kwargs)

    monkeypatch.setattr(datasets, "load", load)
    _no_test_set.searching = True
    yield
    _no_test_set.searching = False


def test_a_local_search_writes_its_outputs_and_its_best_designs_train(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["search", "--out", str(out), "--trials", "3", *TINY]) == 0
    rows = trials(out)
    assert len(rows) == 3 and {r["state"] for r in rows} <= {"complete", "pruned"}
    done = [r for r in rows if r["state"] == "complete"]
    assert done and all(len(json.loads(r["val_acc"])) == 2 for r in done)
    assert all(0 < float(r["value"]) <= 100 and int(r["params"]) < 8000 for r in done)
    text = (out / "search.md").read_text()
    assert "## Best designs" in text and "## Frontier" in text and "minutes" in text
    assert (out / "frontier.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    best = out / "best-1.toml"
    assert 'model = "family"' in best.read_text() and "model_args = {" in best.read_text()
    _no_test_set.searching = False  # training the design is not the search
    assert main(["train", "--recipe", str(best), "--subset", "200", "--epochs", "1", "--no-progress",
                 "--out", str(tmp_path / "t")]) == 0
    assert main(["summary", "family", "--args", json.dumps(json.loads(done[0]["design"]))]) == 0


def test_search_md_ranks_every_trained_point_and_names_the_recipes_model():
    def row(number, value, seconds, settings, state="complete"):
        return {"number": number, "state": state, "value": value, "params": 3924, "macs": 855612, "model": "tiny-3924",
                "design": {}, "settings": settings, "val_acc": [value - 0.02, value, value + 0.02], "seconds": seconds,
                "reason": "", "continues": None}

    rows = [row(0, 99.1, 300, {"batch_size": 64}), row(1, 99.3, 310, {"batch_size": 32}),
            row(2, 99.3, 0, {"batch_size": 32}),  # drawn again: the result of trial 1, not trained
            row(3, 98.5, 90, {"batch_size": 128}, state="pruned")]
    plan = Plan(directory="/s", recipe="tiny-3924", spec="at-most-4000", space="/s.space.toml", overrides={})
    text = markdown(rows, [rows[1]], plan, {"name": "at-most-4000", "last_k": 3}, 600)
    ranked = text.split("## Completed trials, most accurate first")[1]
    lines = [line for line in ranked.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [line.split(" | ")[0] for line in lines] == ["| 1", "| 0"]
    assert "99.28, 99.30, 99.32" in lines[0] and "tiny-3924 (the recipe's)" in lines[0]
    assert "| best-1.toml | 1 | 3,924 | 855,612 | 99.30 | tiny-3924 (the recipe's) | `{\"batch_size\": 32}` |" in text
    rows[1]["settings"], rows[1]["design"] = {}, {"widths": [8, 8]}
    assert '| `{"widths": [8, 8]}` | the recipe\'s |' in markdown(rows, [rows[1]], plan, {"name": "s", "last_k": 3}, 600)


def test_designs_over_the_budget_are_never_trained(tmp_path):
    spec = tmp_path / "tiny-budget.toml"
    spec.write_text("params_below = 1500\nepochs_at_most = 2\naccuracy_at_least = 99.0\nlast_k = 1\n")
    out = tmp_path / "s"
    assert main(["search", "--out", str(out), "--spec", str(spec), "--trials", "4", *TINY]) == 0
    for row in trials(out):
        if row["params"] and int(row["params"]) >= 1500:
            assert row["state"] == "pruned" and "not < 1,500" in row["reason"]
            assert not (out / "trials" / f"trial-{row['number']}").exists()


def test_a_spec_file_travels_with_the_best_designs_and_confirm_can_judge_by_another(tmp_path, monkeypatch):
    (tmp_path / "specs").mkdir()
    spec = tmp_path / "specs" / "small.toml"
    spec.write_text("params_below = 2000\nepochs_at_most = 2\naccuracy_at_least = 99.0\nlast_k = 1\n")
    space = tmp_path / "one.toml"
    space.write_text('model = "family"\n[model_args]\nwidths = { choices = [[4, 6, 8, 8]] }\n')
    out = tmp_path / "s"
    assert main(["search", "--out", str(out), "--spec", str(spec), "--space", str(space), "--trials", "1", *TINY]) == 0
    best = out / "best-1.toml"
    assert 'spec = "../specs/small.toml"' in best.read_text()  # relative to the recipe: the directory can move
    assert "space ../one.toml," in (out / "search.md").read_text()
    monkeypatch.chdir(tmp_path / "specs")
    assert load_recipe(str(best)).spec == str(spec.resolve())
    _no_test_set.searching = False  # confirming is the one time the test set is read
    assert main(["search", "--confirm", str(out), "--spec", "era-s6", "--seeds", "0", "--subset", "200",
                 "--epochs", "1", "--no-compile", "--no-amp", "--device", "cpu"]) == 0
    assert "0 of 1 (era-s6)" in (out / "confirm.md").read_text()
    assert main(["search", "--confirm", str(tmp_path / "elsewhere"), "--spec", "nothing"]) == 1


def test_a_search_continues_where_it_stopped(tmp_path, capsys):
    import optuna

    from tinycnn.nas.study import STUDY, storage

    out = tmp_path / "s"
    assert main(["search", "--out", str(out), "--trials", "2", *TINY]) == 0
    study = optuna.load_study(study_name=STUDY, storage=storage(out, None))
    study.ask().suggest_int("convs_before_pool", 1, 3)  # a trial a killed search left running
    assert main(["search", "--out", str(out), "--trials", "3", *TINY]) == 0
    said = capsys.readouterr().out
    assert "trial 2 was cut short by an interruption; a new trial continues it" in said
    rows = trials(out)
    assert [r["state"] for r in rows].count("fail") == 1 and sum(r["state"] in ("complete", "pruned") for r in rows) == 3
    continued = next(t for t in optuna.load_study(study_name=STUDY, storage=storage(out, None)).trials
                     if t.user_attrs.get("continues") == 2)
    assert continued.params["convs_before_pool"] == study.trials[2].params["convs_before_pool"]
    assert main(["search", "--out", str(out), "--trials", "3", "--subset", "400", *TINY[2:]]) == 1
    assert "holds another search (subset = 300 there, 400 now)" in capsys.readouterr().err


def test_a_pareto_search_has_two_objectives_and_a_frontier(tmp_path):
    out = tmp_path / "s"
    assert main(["search", "--out", str(out), "--trials", "3", "--objective", "pareto", *TINY]) == 0
    import optuna

    study = optuna.load_study(study_name="tinycnn-search", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(out / "journal.log"))))
    assert [d.name for d in study.directions] == ["MINIMIZE", "MAXIMIZE"]
    done = [r for r in trials(out) if r["state"] == "complete"]
    assert done
    for r in done:  # the two objectives are the parameter count and the validation accuracy
        params, accuracy = study.trials[int(r["number"])].values
        assert params == int(r["params"]) and accuracy == pytest.approx(float(r["value"]))
    optuna_front = {t.number for t in study.best_trials}
    undominated = {int(r["number"]) for r in done if not any(
        int(o["params"]) <= int(r["params"]) and float(o["value"]) >= float(r["value"]) and o is not r
        and (int(o["params"]), float(o["value"])) != (int(r["params"]), float(r["value"])) for o in done)}
    assert undominated <= optuna_front
    assert "## Frontier" in (out / "search.md").read_text()


def test_two_worker_processes_share_the_study(tmp_path):
    out = tmp_path / "s"
    assert main(["search", "--out", str(out), "--trials", "4", "--workers", "2", *TINY]) == 0
    finished = [r for r in trials(out) if r["state"] in ("complete", "pruned")]
    assert len(finished) >= 4
    designs = [r["design"] for r in finished]
    assert len(set(designs)) == len(designs)  # the workers' samplers draw different points


def test_an_rdb_study(tmp_path):
    out = tmp_path / "s"
    url = f"sqlite:///{tmp_path / 'study.db'}"
    assert main(["search", "--out", str(out), "--trials", "2", "--storage", url, *TINY]) == 0
    import optuna

    assert len(optuna.load_study(study_name="tinycnn-search", storage=url).trials) == 2
    assert not (out / "journal.log").exists()


def test_a_space_of_the_users_over_their_own_factory(tmp_path):
    (tmp_path / "nets.py").write_text(
        "import torch.nn as nn\n\n"
        "def Wide(width=8, dropout=0.0):\n"
        "    return nn.Sequential(nn.Conv2d(1, width, 3), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),\n"
        "                         nn.Dropout(dropout), nn.Conv2d(width, 10, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())\n")
    space = tmp_path / "space.toml"
    space.write_text('model = "nets.py:Wide"\n[model_args]\nwidth = { choices = [4, 8, 12] }\n'
                     '[settings]\nrotation = { low = 0.0, high = 10.0 }\nbatch_size = { choices = [32, 64] }\n')
    out = tmp_path / "s"
    assert main(["search", "--out", str(out), "--space", str(space), "--trials", "3", *TINY]) == 0
    rows = [r for r in trials(out) if r["state"] == "complete"]
    assert rows and all(json.loads(r["design"])["width"] in (4, 8, 12) for r in rows)
    assert all(0 <= json.loads(r["settings"])["rotation"] <= 10 for r in rows)
    assert f'model = "{tmp_path / "nets.py"}:Wide"' in (out / "best-1.toml").read_text()


@pytest.mark.parametrize("epochs, first", [(1, 2), (2, 2), (6, 2), (7, 3), (15, 5), (20, 7)])
def test_weak_trials_are_stopped_only_from_a_third_of_the_epochs_on(epochs, first):
    assert first_prunable_epoch(epochs) == first


@pytest.mark.parametrize("epoch, epochs, k, may", [(4, 15, 3, False), (5, 15, 3, True), (12, 15, 3, True),
                                                   (13, 15, 3, False), (14, 15, 3, False), (1, 2, 1, False),
                                                   (19, 20, 1, True), (20, 20, 1, False)])
def test_weak_trials_are_not_stopped_in_the_epochs_that_score_them(epoch, epochs, k, may):
    assert may_stop_after(epoch, epochs, k) == may


def test_a_finite_space_that_trials_cover_is_searched_point_by_point_once(tmp_path, capsys):
    space = tmp_path / "grid.toml"
    space.write_text('model = "family"\n[model_args]\nwidths = { choices = [[4, 6, 8, 8], [4, 8, 8]] }\n'
                     '[settings]\nrotation = { low = 0.0, high = 2.0, step = 2.0 }\n')
    out = tmp_path / "s"
    assert main(["search", "--out", str(out), "--space", str(space), "--trials", "10", *TINY]) == 0
    assert "4 trials to go of 4 (local, 1 at a time, each point of the space's 4 once)" in capsys.readouterr().out
    rows = trials(out)
    points = {(r["design"], r["settings"]) for r in rows}
    assert len(rows) == 4 and len(points) == 4 and all(r["state"] in ("complete", "pruned") for r in rows)
    assert main(["search", "--out", str(out), "--space", str(space), "--trials", "10", *TINY]) == 0
    assert "4 trials already finished" in capsys.readouterr().out


def test_the_ray_backend_runs_the_same_study_on_a_local_ray_instance_to_the_end_of_a_grid(tmp_path):
    pytest.importorskip("ray")
    space = tmp_path / "grid.toml"
    space.write_text('model = "family"\n[model_args]\nwidths = { choices = [[4, 6, 8, 8], [4, 8, 8]] }\n')
    out = tmp_path / "s"
    assert main(["search", "--out", str(out), "--space", str(space), "--trials", "5", "--backend", "ray",
                 "--workers", "2", *TINY]) == 0
    rows = [r for r in trials(out) if not r["reason"].startswith("the same point")]
    assert len(rows) == 2 and {r["state"] for r in rows} <= {"complete", "pruned"}
    assert len({r["design"] for r in rows}) == 2  # each point of the grid once, then the search ends
    assert all((out / "trials" / f"trial-{r['number']}" / "metrics.jsonl").exists() for r in rows if r["state"] == "complete")


def test_a_point_drawn_again_takes_the_earlier_result_and_does_not_count():
    import optuna

    from tinycnn.nas.study import enough, finished
    from tinycnn.nas.trial import twin_result

    study = optuna.create_study(direction="maximize")
    for width in (8, 8, 8):
        study.enqueue_trial({"width": width})
    first = study.ask()
    first.suggest_categorical("width", [8, 12])
    first.set_user_attr("val_acc", [98.0, 99.0])
    first.set_user_attr("run_dir", "/s/trials/trial-0")
    study.tell(first, 99.0)
    plan = Plan(directory="/s", recipe="default", spec="era-s7", space="family", overrides={})
    for _ in range(2):
        again = study.ask()
        again.suggest_categorical("width", [8, 12])
        assert twin_result(again, earlier_twin(again), plan) == 99.0
        study.tell(again, 99.0)
    a = study.trials[2].user_attrs
    assert a["val_acc"] == [98.0, 99.0] and a["run_dir"] == "/s/trials/trial-0" and a["seconds"] == 0.0
    assert a["reason"] == "the same point as trial 0: its result, not trained again"
    assert finished(study) == 1  # the repeats do not count towards --trials
    assert not enough(study, 2, 3)
    assert enough(study, 2, 2)  # as many repeats as --trials: the sampler has settled


def test_an_interrupted_trial_continues_from_its_resume_point_to_the_same_result(tmp_path, monkeypatch, capsys):
    import signal

    from tinycnn.engine.trainer import Trainer

    space = tmp_path / "one.toml"
    space.write_text('model = "family"\n[model_args]\nwidths = { choices = [[4, 6, 8, 8]] }\n')
    args = ["--space", str(space), "--trials", "1", "--subset", "300", "--epochs", "3", *TINY[4:]]
    assert main(["search", "--out", str(tmp_path / "whole"), *args]) == 0
    train_epoch = Trainer._train_epoch

    def ctrl_c_in_epoch_2(self, epoch, partial, on_batch):
        if epoch == 1 and partial.batch == 0:
            signal.raise_signal(signal.SIGINT)  # the Trainer's handler: finish the batch, save, stop
        return train_epoch(self, epoch, partial, on_batch)

    monkeypatch.setattr(Trainer, "_train_epoch", ctrl_c_in_epoch_2)
    out = tmp_path / "cut"
    assert main(["search", "--out", str(out), *args]) == 130
    cut = trials(out)
    assert [r["state"] for r in cut] == ["fail"] and "interrupted" in cut[0]["reason"]
    assert len(json.loads(cut[0]["val_acc"])) == 1 and (out / "trials" / "trial-0" / "last.pt").exists()
    monkeypatch.setattr(Trainer, "_train_epoch", train_epoch)
    moved = tmp_path / "elsewhere"  # the search and its space file moved together, as in a clone
    moved.mkdir()
    shutil.move(out, moved / "cut")
    shutil.move(space, moved / "one.toml")
    out = moved / "cut"
    args[1] = str(moved / "one.toml")
    assert main(["search", "--out", str(out), *args]) == 0
    assert "trial 0 was cut short by an interruption; a new trial continues it" in capsys.readouterr().out
    _, then = trials(out)
    whole = trials(tmp_path / "whole")[0]
    assert then["state"] == "complete" and then["val_acc"] == whole["val_acc"] and then["value"] == whole["value"]
    assert then["reason"] == "continues trial 0, from its resume point after epoch 1" and then["continues"] == "0"
    assert "1 complete, 0 pruned (over the budget, not fitting, or stopped behind the others), 0 failed, 1 interrupted " \
           "and continued by a later trial." in (out / "search.md").read_text()
    assert not (out / "trials" / "trial-1").exists()  # trained on in trial 0's run directory
    assert not (tmp_path / "cut").exists()


def test_kill_or_ctrl_c_to_a_search_of_two_workers_stops_both_quietly_and_the_same_command_continues(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "s"
    command = [sys.executable, "-m", "tinycnn", "search", "--out", str(out), "--trials", "2", "--workers", "2",
               "--subset", "400", "--epochs", "30", *TINY[4:]]
    search = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 240
    while len(list(out.glob("trials/trial-*/metrics.jsonl"))) < 2 and search.poll() is None:  # both training
        assert time.monotonic() < deadline, "the workers did not start training"
        time.sleep(0.2)
    search.send_signal(signal.SIGTERM)  # `kill PID`: to the parent alone, which takes it as a Ctrl-C
    _, err = search.communicate(timeout=120)
    assert search.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    rows = trials(out)
    assert sorted(r["state"] for r in rows) == ["fail", "fail"] and all("interrupted" in r["reason"] for r in rows)
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert sorted(r["state"] for r in trials(out)) == ["complete", "complete", "fail", "fail"]
    assert len(list(out.glob("trials/trial-*"))) == 2  # each continued in its own run directory


def test_a_point_still_training_elsewhere_is_not_trained_twice():
    import optuna

    from tinycnn.nas.study import tally

    study = optuna.create_study(direction="maximize")
    for width in (8, 8, 12):
        study.enqueue_trial({"width": width})
    first, second, other = (study.ask() for _ in range(3))
    for trial in (first, second, other):
        trial.suggest_categorical("width", [8, 12])
    assert earlier_twin(first) is None and earlier_twin(other) is None  # the earliest of a point trains
    with pytest.raises(optuna.TrialPruned):
        earlier_twin(second)  # while the first still trains
    assert "still training" in study.trials[second.number].user_attrs["reason"]
    study.tell(second, state=optuna.trial.TrialState.PRUNED)
    assert tally(study) == (0, 2, 1)  # (points finished, trials training, repeats): the repeat does not count
    study.tell(first, state=optuna.trial.TrialState.FAIL)  # interrupted: a later trial trains the point
    for _ in range(2):
        study.enqueue_trial({"width": 8})
    again = study.ask()
    again.suggest_categorical("width", [8, 12])
    again.set_user_attr("val_acc", [99.0])
    study.tell(again, 99.0)
    assert tally(study) == (1, 1, 1)
    later = study.ask()
    later.suggest_categorical("width", [8, 12])
    assert earlier_twin(later).number == again.number  # the result of the trial that trained, not the repeat's


def test_confirm_trains_the_best_designs_over_seeds_each_in_its_trials_directory(tmp_path, capsys):
    import re

    out = tmp_path / "s"
    assert main(["search", "--out", str(out), "--trials", "2", "--top", "1", *TINY]) == 0
    best = (out / "best-1.toml").read_text()
    number = re.search(r"search trial (\d+):", best).group(1)
    (out / "best-2.toml").write_text(best)  # a second design, which --top 1 leaves out
    _no_test_set.searching = False  # confirming is the one time the test set is read
    confirm = ["search", "--confirm", str(out), "--seeds", "0,1", "--subset", "200", "--epochs", "1", "--no-compile",
               "--no-amp", "--device", "cpu"]
    assert main([*confirm, "--top", "1"]) == 0
    text = (out / "confirm.md").read_text()
    assert f"| best-1.toml (trial {number}) |" in text and "0 of 2 (era-s7)" in text  # a --subset run never meets a budget
    assert (out / "confirm" / f"trial-{number}" / "seed-1" / "metrics.jsonl").exists()
    assert "best-2" not in text and len(list((out / "confirm").iterdir())) == 1
    # the search continued and ranked another trial first: best-1 is now that trial's, confirmed anew
    (out / "best-2.toml").write_text(best)
    (out / "best-1.toml").write_text(best.replace(f"search trial {number}:", "search trial 77:"))
    assert main([*confirm, "--top", "2"]) == 0
    text = (out / "confirm.md").read_text()
    assert "| best-1.toml (trial 77) |" in text and f"| best-2.toml (trial {number}) |" in text
    assert sorted(p.name for p in (out / "confirm").iterdir()) == sorted([f"trial-{number}", "trial-77"])


def test_search_from_python(tmp_path):
    directory = tinycnn.search(tmp_path / "s", trials=2, subset=300, epochs=2, val_size=200, compile=False, amp=False,
                               device="cpu", log=lambda line: None)
    assert (directory / "trials.csv").exists()


@pytest.mark.parametrize("argv, message", [
    (["--space", "nothing"], "unknown search space 'nothing'"),
    (["--backend", "ray", "--ray-address", "10.0.0.1:6379"], "give them a shared study with --storage URL"),
    (["--trials", "0"], "--trials and --workers must be >= 1"),
])
def test_search_mistakes_are_one_line(tmp_path, capsys, argv, message):
    assert main(["search", "--out", str(tmp_path / "s"), *argv, *TINY]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_a_bad_space_file_is_one_line(tmp_path, capsys):
    space = tmp_path / "space.toml"
    space.write_text("[settings]\nmax_lr = { low = 0.3, high = 0.1 }\n")
    assert main(["search", "--out", str(tmp_path / "s"), "--space", str(space), *TINY]) == 1
    assert "low and high should be numbers with low < high" in capsys.readouterr().err
    shutil.rmtree(tmp_path / "s", ignore_errors=True)


def test_a_space_files_grid_is_every_value_of_every_finite_dimension(tmp_path):
    from tinycnn.nas.space import load_space

    space = tmp_path / "space.toml"
    space.write_text('[model_args]\nwidths = { choices = [[8, 8], [10, 10], [12]] }\nblocks = { low = 2, high = 6, step = 2 }\n'
                     '[settings]\nrotation = { low = 0.0, high = 1.0, step = 0.25 }\nema = { choices = [0.0, 0.99] }\n')
    loaded = load_space(str(space))
    assert loaded.grid == {"model.widths#": [0, 1, 2], "model.blocks": [2, 4, 6],
                           "rotation": [0.0, 0.25, 0.5, 0.75, 1.0], "ema": [0.0, 0.99]}
    assert loaded.size == 3 * 3 * 5 * 2
    assert loaded.walked_by(90) and not loaded.walked_by(89)  # fewer trials than points: TPE
    space.write_text('[settings]\nmax_lr = { low = 0.05, high = 0.3, log = true }\nema = { choices = [0.0, 0.99] }\n')
    assert load_space(str(space)).size is None  # a continuous range: TPE, never the grid
    assert load_space("family").size is None and not load_space("family").walked_by(10**6)


def test_the_shipped_searches_name_their_files_relative_to_themselves():
    """So that a clone anywhere continues them with the command in docs/models.md."""
    root = Path(__file__).resolve().parents[2] / "results" / "search"
    plans = [json.loads(p.read_text())["plan"] for p in root.glob("*/search.json")]
    assert plans
    for plan in plans:
        for key in ("recipe", "spec", "space"):
            assert not Path(plan[key]).is_absolute(), plan
            if plan[key].endswith(".toml"):
                assert (root / "x" / plan[key]).resolve().exists(), plan


def test_a_searchs_time_leaves_out_the_pauses_between_its_runs():
    from datetime import datetime, timedelta

    import optuna

    from tinycnn.nas.study import wall_seconds

    t0 = datetime(2026, 12, 7, 12, 0, 0)
    study = optuna.create_study(direction="maximize")
    for start, stop in ((0, 100), (50, 130), (10, 20), (86_400, 86_460)):  # two at a time, then a day's pause
        trial = optuna.trial.create_trial(value=1.0)
        trial.datetime_start, trial.datetime_complete = t0 + timedelta(seconds=start), t0 + timedelta(seconds=stop)
        study.add_trial(trial)
    assert wall_seconds(study) == 130 + 60

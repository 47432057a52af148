"""The experiment runner end to end on a tiny subset (train, skip what finished, resume what was
interrupted), the analysis sentences on known numbers, the shipped files, and bad files."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinycnn.analysis import plots
from tinycnn.analysis.experiment import (
    analyse,
    load_experiment,
    resume_command,
    run_experiment,
)
from tinycnn.analysis.report import spread
from tinycnn.cli import main
from tinycnn.engine.trainer import Trainer
from tinycnn.errors import TinycnnError

REPO = Path(__file__).resolve().parents[2]

TWO_STEPS = """
name = "tiny"
seeds = 1

[[step]]
name = "a"
target = "a first small model"
recipe = "era-s7-step6"

[[step]]
name = "b"
target = ["more dropout", "no rotation"]
recipe = "era-s7-step6"
[step.overrides]
dropout = 0.1
rotation = 0.0
"""


def quiet(*_):
    pass


def write(tmp_path, text, name="exp.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def assert_png(path, size):
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (size[0] * plots.DPI, size[1] * plots.DPI)
        assert (np.asarray(im.convert("L"), dtype=float) / 255).std() > 0.02


def test_runs_skips_finished_steps_and_resumes_interrupted_ones(tmp_path, monkeypatch):
    exp = load_experiment(write(tmp_path, TWO_STEPS), subset=200, epochs=1, device="cpu")
    out = tmp_path / "out"
    assert run_experiment(exp, out, log=quiet) == {"a": "trained", "b": "trained"}
    assert json.loads((out / "a" / "seeds.json").read_text()) == {"seeds": [0], "stacked": False}  # the CPU: one by one

    text = (out / "experiment.md").read_text()
    for part in ("## Step 1: a", "## Step 2: b", "### Target", "1. more dropout", "### Result", "### Analysis",
                 "Against a: changed dropout 0.05 -> 0.1, rotation 15 -> 0", "Parameters: 6,750", "Subset run"):
        assert part in text
    facts = json.loads((out / "experiment.json").read_text())["steps"]
    assert [f["step"] for f in facts] == ["a", "b"] and facts[0]["params"] == 6750
    assert_png(out / "experiment.png", plots.SIZE_OVERLAY)

    # A finished step is never trained again; a deleted one is trained anew.
    a_ckpt = out / "a" / "seed-0" / "last.pt"
    stamp = a_ckpt.stat().st_mtime_ns
    import shutil

    shutil.rmtree(out / "b")
    assert run_experiment(exp, out, log=quiet) == {"a": "skipped", "b": "trained"}
    assert a_ckpt.stat().st_mtime_ns == stamp

    # Interrupt step b in its second batch (as Ctrl-C does), then run again: it resumes.
    shutil.rmtree(out / "b")
    original_fit = Trainer.fit

    def stop_early(self, resume=False, on_batch=None):
        return original_fit(self, resume, on_batch=lambda epoch, batch: self.request_stop())

    monkeypatch.setattr(Trainer, "fit", stop_early)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(exp, out, log=quiet)
    assert json.loads((out / "b" / "seed-0" / "run.json").read_text())["status"] == "interrupted"
    monkeypatch.setattr(Trainer, "fit", original_fit)
    assert run_experiment(exp, out, log=quiet) == {"a": "skipped", "b": "resumed"}
    assert a_ckpt.stat().st_mtime_ns == stamp
    run = json.loads((out / "b" / "seed-0" / "run.json").read_text())
    assert run["status"] == "finished" and run["epochs_done"] == 1

    # The same directory with another configuration is refused, not mixed.
    other = load_experiment(exp.path, subset=200, epochs=2, device="cpu")
    with pytest.raises(TinycnnError, match="another configuration .*epochs 1 there, 2 now"):
        run_experiment(other, out, log=quiet)


def facts(train, test, *, params=6750, seeds=1, reached=None, consistent=None, last_k=3, epochs=15):
    """Step facts as step_facts() makes them, from final/best train and test accuracy per seed."""
    train, test = list(np.broadcast_to(train, seeds)), list(np.broadcast_to(test, seeds))
    hit = [t >= 99.4 for t in test]
    return {
        "seeds": list(range(seeds)), "last_k": last_k, "target": 99.4, "params": params, "epochs": epochs,
        "final_train": spread(train), "final_test": spread(test), "best_train": spread(train), "best_test": spread(test),
        "min_last_k": spread(test), "gap": spread([a - b for a, b in zip(train, test)]),
        "reached": sum(hit) if reached is None else reached, "first_epoch": [9] * sum(hit),
        "consistent": sum(hit) if consistent is None else consistent, "peak_epoch": [epochs] * seeds,
        "last_gain": spread([0.0] * seeds), "has_dropout": False,
    }


def test_analysis_sentences_follow_the_numbers():
    exp = load_experiment(REPO / "experiments" / "era-s7.toml")
    s1, s2 = exp.steps[0], exp.steps[1]
    # The write-up's step 1: best train 99.78, best test 99.07: over-fitting, target missed.
    first = analyse(s1, facts(99.78, 99.07, params=147344))
    assert first[0].startswith("Over-fitting") and "0.71 pp" in first[0] and "no dropout and no augmentation" in first[0]
    assert any(s.startswith("Target 99.4% not reached") and "0.33 pp short" in s for s in first)
    # Step 2: 99.53 / 99.48, three seeds, all consistent.
    second = analyse(s2, facts([99.5, 99.55, 99.54], [99.46, 99.48, 99.5], params=10616, seeds=3), s1, facts(99.78, 99.07, params=147344, seeds=3))
    assert second[0].startswith("Training (99.53%) and test (99.48%) accuracy agree")
    assert any("reached in 3 of 3 seeds" in s and "consistently met" in s for s in second)
    assert any(s.startswith("Against step1: changed model era-s7-147k -> era-s7-10616") and "(-93%)" in s and "best test accuracy +0.41 pp" in s for s in second)
    # Test above train with augmentation: regularisation named, no over-fitting.
    fourth = analyse(exp.steps[3], {**facts(98.73, 99.44), "has_dropout": True})
    assert fourth[0].startswith("No over-fitting") and "rotation +-15 deg" in fourth[0]


def test_shipped_experiments_load():
    s7 = load_experiment(REPO / "experiments" / "era-s7.toml")
    assert [s.recipe for s in s7.steps] == [f"era-s7-step{i}" for i in range(1, 7)]
    assert all(s.seeds == [0, 1, 2] and s.target for s in s7.steps)
    s6 = load_experiment(REPO / "experiments" / "era-s6.toml")
    assert sorted(s.recipe for s in s6.steps) == ["era-s6-11952", "era-s6-15938", "era-s6-16k", "era-s6-19712"]
    smoke = load_experiment(REPO / "experiments" / "era-s6.toml", subset=100, epochs=1, seeds=[0])
    assert all(s.config.subset == 100 and s.config.epochs == 1 and s.seeds == [0] for s in smoke.steps)


BAD = {
    "unknown top key": ('nmae = "x"\n[[step]]\nname = "a"\ntarget = "t"\nrecipe = "default"\n', "unknown key 'nmae' (did you mean 'name'?)"),
    "unknown step key": ('[[step]]\nname = "a"\ntarget = "t"\nrecipe = "default"\nseed = 1\n', "step 1 ('a'): unknown key 'seed' (did you mean 'seeds'?)"),
    "missing recipe": ('[[step]]\nname = "a"\ntarget = "t"\n', "step 1 ('a'): missing recipe"),
    "unknown recipe": ('[[step]]\nname = "a"\ntarget = "t"\nrecipe = "era-s7-stepX"\n', "step 1 ('a'): unknown recipe 'era-s7-stepX'"),
    "bad override": ('[[step]]\nname = "a"\ntarget = "t"\nrecipe = "default"\n[step.overrides]\nepoch = 3\n', "overrides: unknown key 'epoch' (did you mean 'epochs'?)"),
    "bad override value": ('[[step]]\nname = "a"\ntarget = "t"\nrecipe = "default"\n[step.overrides]\nepochs = "3"\n', "epochs = '3' should be int"),
    "no steps": ('name = "x"\n', "no steps"),
    "twice": ('[[step]]\nname = "a"\ntarget = "t"\nrecipe = "default"\n[[step]]\nname = "a"\ntarget = "t"\nrecipe = "default"\n', "used twice"),
    "bad seeds": ('seeds = 0\n[[step]]\nname = "a"\ntarget = "t"\nrecipe = "default"\n', "seeds = 0 should be a count"),
    "bad toml": ('[[step]\n', "not valid TOML"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_experiment_files(case, tmp_path, capsys):
    text, message = BAD[case]
    path = write(tmp_path, text)
    with pytest.raises(TinycnnError) as info:
        load_experiment(path)
    assert message in str(info.value) and str(path) in str(info.value)
    assert main(["experiment", str(path), "--dry-run"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("tinycnn: error:") and "\n" not in err


def test_missing_file_and_dry_run(tmp_path, capsys):
    assert main(["experiment", str(tmp_path / "nope.toml")]) == 1
    assert "no such experiment file" in capsys.readouterr().err
    assert main(["experiment", str(REPO / "experiments" / "era-s7.toml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "6. step6: recipe era-s7-step6" in out and "changes from step5: model era-s7-8172 -> era-s7-6750" in out


def test_parallel_trains_the_seeds_of_all_steps_side_by_side(tmp_path, monkeypatch):
    monkeypatch.setattr("tinycnn.device.TORCH_DEFAULT_THREADS", 2)  # a 2-core machine, whatever this one has
    exp = load_experiment(write(tmp_path, TWO_STEPS), subset=200, epochs=1, device="cpu")
    out = tmp_path / "out"
    assert run_experiment(exp, out, log=quiet, parallel=True) == {"a": "trained", "b": "trained"}
    for step, extra in (("a", []), ("b", ["--dropout", "0.1", "--rotation", "0"])):
        # one process each, one thread each; each seed the run `tinycnn train --threads 1` makes
        assert json.loads((out / step / "seeds.json").read_text()) == {"seeds": [0], "stacked": False, "processes": 2, "threads": 1}
        alone = tmp_path / f"alone-{step}"
        assert main(["train", "--recipe", "era-s7-step6", *extra, "--subset", "200", "--epochs", "1", "--threads", "1",
                     "--device", "cpu", "--no-progress", "--out", str(alone)]) == 0
        assert _epochs(out / step / "seed-0") == _epochs(alone)
    assert (out / "b" / "summary.json").exists() and "## Step 2: b" in (out / "experiment.md").read_text()
    assert run_experiment(exp, out, log=quiet, parallel=True) == {"a": "skipped", "b": "skipped"}
    # what an interruption tells to run again: the same overrides, the same directory
    assert resume_command(exp, out, True) == f"tinycnn experiment {exp.path} --subset 200 --epochs 1 --device cpu --out {out} --parallel"
    seeded = load_experiment(exp.path, seeds=[0, 2])
    assert resume_command(seeded, out, False) == f"tinycnn experiment {exp.path} --seeds 0,2 --out {out}"

    # A step lost after it started side by side is trained as it was started, with or without --parallel.
    import shutil

    before = _epochs(out / "b" / "seed-0")
    for parallel in (True, False):
        shutil.rmtree(out / "b" / "seed-0")
        (out / "b" / "summary.json").unlink()
        assert run_experiment(exp, out, log=quiet, parallel=parallel) == {"a": "skipped", "b": "resumed"}
        assert _epochs(out / "b" / "seed-0") == before
        assert "threads = 1" in (out / "b" / "seed-0" / "config.toml").read_text()


def _epochs(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(r["train_loss"], r["test_acc"]) for r in rows]

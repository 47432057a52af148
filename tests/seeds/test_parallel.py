"""--parallel: seeds trained side by side in processes of their own (parallel_seeds.py)."""

import fcntl
import json
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tinycnn.cli import main
from tinycnn.seeds.parallel import plan_processes


def _metrics(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(r["train_loss"], r["test_acc"]) for r in rows]


def test_plan_processes():
    assert plan_processes(seeds=2, threads=0, cores=2) == (2, 1)
    assert plan_processes(seeds=4, threads=0, cores=2) == (2, 1)
    # seeds that do not divide evenly join the others instead of training alone at the end
    assert plan_processes(seeds=3, threads=0, cores=2) == (3, 1)
    assert plan_processes(seeds=5, threads=0, cores=2) == (3, 1)
    assert plan_processes(seeds=18, threads=0, cores=2) == (2, 1)
    assert plan_processes(seeds=3, threads=0, cores=16) == (3, 5)
    assert plan_processes(seeds=3, threads=1, cores=8) == (3, 1)
    assert plan_processes(seeds=5, threads=2, cores=8) == (5, 2)
    assert plan_processes(seeds=8, threads=2, cores=8) == (4, 2)
    assert plan_processes(seeds=2, threads=4, cores=2) == (1, 4)
    assert plan_processes(seeds=3, threads=0, cores=1) == (1, 1)


def test_each_seed_is_its_own_run(tmp_path, monkeypatch):
    monkeypatch.setattr("tinycnn.device.TORCH_DEFAULT_THREADS", 2)  # a 2-core machine, whatever this one has
    common = ["--subset", "512", "--epochs", "2", "--no-progress"]
    together = tmp_path / "together"
    assert main(["train", *common, "--seeds", "0,1,2", "--parallel", "--out", str(together)]) == 0
    # three seeds on 2 cores: all at once, one thread each; the run's own config as given
    assert json.loads((together / "seeds.json").read_text()) == {"seeds": [0, 1, 2], "stacked": False, "processes": 3, "threads": 1}
    assert "threads = 0" in (together / "config.toml").read_text()
    for seed in (0, 1, 2):
        assert "threads = 1" in (together / f"seed-{seed}" / "config.toml").read_text()
        alone = tmp_path / f"alone-{seed}"
        assert main(["train", *common, "--threads", "1", "--seed", str(seed), "--out", str(alone)]) == 0
        # value for value the run `tinycnn train --seed S --threads 1` makes
        assert _metrics(together / f"seed-{seed}") == _metrics(alone)
    # A resume trains a lost seed with the saved thread count, not with a new plan.
    shutil.rmtree(together / "seed-2")
    monkeypatch.setattr("tinycnn.device.TORCH_DEFAULT_THREADS", 4)
    assert main(["train", "--resume", str(together), "--no-progress"]) == 0
    assert _metrics(together / "seed-2") == _metrics(tmp_path / "alone-2")


def _cut_in_second_epoch(args, run_dir, cut):
    """`tinycnn ARGS --out RUN_DIR` in a process, `cut(process)` once a seed is in its second epoch."""
    cli = subprocess.Popen([sys.executable, "-m", "tinycnn", *args, "--out", str(run_dir)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in cli.stdout:
        if "epoch  1/2" in line:  # one seed is in its second and last epoch
            cut(cli)
            break
    return cli


def test_ctrl_c_saves_every_seed_and_resume_finishes_them(tmp_path):
    args = ["train", "--subset", "3000", "--epochs", "2", "--threads", "1", "--seeds", "0,1", "--parallel", "--no-progress"]
    run_dir = tmp_path / "cut"
    cli = _cut_in_second_epoch(args, run_dir, lambda cli: cli.send_signal(signal.SIGINT))
    output = cli.stdout.read()
    assert cli.wait(timeout=120) == 130, output
    assert f"tinycnn train --resume {run_dir}" in output
    statuses = [json.loads((run_dir / f"seed-{s}" / "run.json").read_text())["status"] for s in (0, 1)]
    assert "interrupted" in statuses and set(statuses) <= {"interrupted", "finished"}
    assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 0
    whole = tmp_path / "whole"
    assert main([*args, "--out", str(whole)]) == 0
    for seed in (0, 1):
        assert _metrics(run_dir / f"seed-{seed}") == _metrics(whole / f"seed-{seed}")


def test_seeds_whose_parent_is_killed_save_and_stop(tmp_path):
    """SIGKILL leaves the parent no chance to pass Ctrl-C on: the children must not train on unseen."""
    args = ["train", "--subset", "3000", "--epochs", "2", "--threads", "1", "--seeds", "0,1", "--parallel", "--no-progress"]
    run_dir = tmp_path / "cut"
    cli = _cut_in_second_epoch(args, run_dir, lambda cli: cli.kill())
    cli.wait(timeout=60)
    # each child saves, says so in its run.json and ends; a seed still starting when its parent
    # died has no run.json yet, and --resume starts it afresh
    runs = [run_dir / f"seed-{s}" / "run.json" for s in (0, 1)]
    deadline = time.monotonic() + 120
    while True:
        statuses = [json.loads(run.read_text())["status"] for run in runs if run.exists()]
        if "running" not in statuses and all(_unlocked(run.parent) for run in runs):
            break
        assert time.monotonic() < deadline, f"a seed kept running after its parent was killed: {statuses}"
        time.sleep(0.5)
    output = cli.stdout.read()  # what the seeds said after their parent was gone
    assert "interrupted" in statuses and set(statuses) <= {"interrupted", "finished"}, output
    assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 0


def _unlocked(seed_dir) -> bool:
    if not (seed_dir / ".lock").exists():
        return True
    with open(seed_dir / ".lock", "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(f, fcntl.LOCK_UN)
        return True


def test_a_failing_seed_is_one_line(tmp_path, capsys):
    code = main(["train", "--subset", "512", "--epochs", "2", "--seeds", "0,1", "--parallel", "--scheduler", "none",
                 "--lr", "1e12", "--no-progress", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1
    assert err[0].startswith("tinycnn: error: seed ") and "not finite" in err[0]


@pytest.mark.parametrize("extra, message", [
    ([], "give them with --seeds"),
    (["--seeds", "0,1", "--stack"], "choose one"),
])
def test_wrong_combinations_are_one_line(tmp_path, capsys, extra, message):
    assert main(["train", "--parallel", *extra, "--subset", "256", "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]

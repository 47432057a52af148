"""--parallel: seeds trained side by side in processes of their own (parallel_seeds.py)."""

import json
import signal
import subprocess
import sys

import pytest

from tinycnn.cli import main
from tinycnn.parallel_seeds import process_count
from tinycnn.train import TORCH_DEFAULT_THREADS


def _metrics(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(r["train_loss"], r["test_acc"]) for r in rows]


def test_process_count():
    assert process_count(seeds=3, threads=0, cores=2) == 2
    assert process_count(seeds=3, threads=1, cores=8) == 3
    assert process_count(seeds=5, threads=2, cores=8) == 4
    assert process_count(seeds=2, threads=4, cores=2) == 1


def test_each_seed_is_its_own_run(tmp_path):
    common = ["--subset", "512", "--epochs", "2", "--threads", "1", "--no-progress"]
    assert main(["train", *common, "--seeds", "0,1", "--parallel", "--out", str(tmp_path / "together")]) == 0
    saved = json.loads((tmp_path / "together" / "seeds.json").read_text())
    assert saved["stacked"] is False and saved.get("processes", 1) == process_count(2, 1, TORCH_DEFAULT_THREADS)
    for seed in (0, 1):
        alone = tmp_path / f"alone-{seed}"
        assert main(["train", *common, "--seed", str(seed), "--out", str(alone)]) == 0
        # value for value the run `tinycnn train --seed S --threads 1` makes
        assert _metrics(tmp_path / "together" / f"seed-{seed}") == _metrics(alone)


def test_ctrl_c_saves_every_seed_and_resume_finishes_them(tmp_path):
    args = ["train", "--subset", "3000", "--epochs", "2", "--threads", "1", "--seeds", "0,1", "--parallel", "--no-progress"]
    run_dir = tmp_path / "cut"
    cli = subprocess.Popen([sys.executable, "-m", "tinycnn", *args, "--out", str(run_dir)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in cli.stdout:
        if "epoch  1/2" in line:  # one seed is in its second and last epoch
            cli.send_signal(signal.SIGINT)
            break
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

"""A run directory nothing can corrupt: a run killed at every write of an epoch resumes to the
uninterrupted run's files; two processes never share a directory; a full or read-only file
system and every damaged file give one line, a non-zero exit, and lose nothing."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tinycnn.cli import main
from tinycnn.engine.rundir import read_metrics, read_run

TINY = ["--subset", "256", "--epochs", "2", "--batch-size", "64", "--val-size", "64", "--deterministic", "--threads", "1",
        "--no-compile", "--no-amp", "--device", "cpu", "--no-progress"]
TIMING = {"train_seconds", "eval_seconds", "images_per_second"}


def tinycnn(*args, env=None, check=False, timeout=300):
    """`tinycnn ARGS` in a process of its own, as a user's shell runs it."""
    result = subprocess.run([sys.executable, "-m", "tinycnn", *map(str, args)], capture_output=True, text=True,
                            env={**os.environ, **(env or {})}, timeout=timeout)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def one_line(result) -> str:
    lines = [line for line in result.stderr.strip().splitlines() if line.startswith("tinycnn: error:")]
    assert result.returncode != 0 and len(lines) == 1, result.stderr
    return lines[0]


def rows(run_dir):
    return [{k: v for k, v in m.items() if k not in TIMING} for m in read_metrics(run_dir)]


def weights(path):
    return torch.load(path, weights_only=True)["model"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run every killed one must come back to."""
    out = tmp_path_factory.mktemp("reference") / "run"
    tinycnn("train", *TINY, "--out", out, check=True)
    return out


@pytest.mark.parametrize("kill_after", ["best.pt:1", "last.pt:1", "metrics.jsonl:1", "run.json:2", "last.pt:2"])
def test_a_run_killed_at_any_write_resumes_to_the_uninterrupted_runs_files(tmp_path, reference, kill_after):
    out = tmp_path / "run"
    killed = tinycnn("train", *TINY, "--out", out, env={"TINYCNN_TEST_KILL_AFTER": kill_after})
    assert killed.returncode == 137, killed.stderr
    (out / ".tmp-metrics.jsonl.leftover").write_text("a write the kill cut short\n")
    assert main(["check", str(out)]) == 1  # not finished: it cannot pass
    tinycnn("train", "--resume", out, check=True)
    assert rows(out) == rows(reference)
    mine, theirs = weights(out / "last.pt"), weights(reference / "last.pt")
    assert all(torch.equal(mine[k], theirs[k]) for k in theirs)
    assert read_run(out)["status"] == "finished" and not list(out.glob(".tmp-*"))


def test_a_run_killed_before_its_first_resume_point_starts_again(tmp_path, reference):
    out = tmp_path / "run"
    assert tinycnn("train", *TINY, "--out", out, env={"TINYCNN_TEST_KILL_AFTER": "run.json:1"}).returncode == 137
    resumed = tinycnn("train", "--resume", out, check=True)
    assert "no epoch was saved before it stopped; starting it again" in resumed.stdout
    assert rows(out) == rows(reference)


def test_two_processes_on_one_directory(tmp_path):
    out = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "tinycnn", "train", *TINY, "--out", str(out)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen([sys.executable, "-m", "tinycnn", "train", *TINY, "--seed", "2", "--model", "tiny-5k",
                               "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = [(p.wait(timeout=300), p.communicate()[1]) for p in (first, second)]
    assert sorted(code for code, _ in results) == [0, 1], results
    refused = next(err for code, err in results if code == 1)
    assert "in use by another tinycnn process" in refused or "already holds a run" in refused
    config = (out / "config.toml").read_text()
    saved = torch.load(out / "last.pt", weights_only=True)["config"]
    assert f'model = "{saved["model"]}"' in config and f"seed = {saved['seed']}" in config  # one run's files, not two
    assert len(read_metrics(out)) == 2


def test_resuming_a_run_another_process_is_training_is_refused(tmp_path):
    out = tmp_path / "run"
    slow = subprocess.Popen([sys.executable, "-m", "tinycnn", "train", *TINY, "--subset", "3000", "--epochs", "3", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):  # until the first epoch is saved
            if (out / "last.pt").exists() or slow.poll() is not None:
                break
            subprocess.run(["sleep", "0.1"])
        assert slow.poll() is None, "the run ended before the test could resume it"
        assert "in use by another tinycnn process" in one_line(tinycnn("train", "--resume", out))
    finally:
        slow.wait(timeout=300)
    assert read_run(out)["status"] == "finished"


def _mount(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True).returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    if not _mount(disk, "size=160k"):
        pytest.skip("mounting a small tmpfs needs root (CAP_SYS_ADMIN); run the suite as root to fill a file system")
    yield disk
    subprocess.run(["umount", str(disk)], capture_output=True)


def test_a_full_disk_stops_with_one_line_and_resumes_once_there_is_space(small_disk, reference):
    out = small_disk / "run"
    result = tinycnn("train", *TINY, "--out", out)
    line = one_line(result)
    assert "No space left on device" in line and f"resume with: tinycnn train --resume {out}" in line
    assert read_run(out)["status"] == "stopped"
    subprocess.run(["mount", "-o", "remount,size=20m", str(small_disk)], check=True)
    tinycnn("train", "--resume", out, check=True)
    assert rows(out) == rows(reference)


def test_an_out_that_cannot_be_written_is_one_line_before_any_data_loads(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    assert "is a file, not a run directory" in one_line(tinycnn("train", *TINY, "--out", a_file))
    assert a_file.read_text() == "not a directory"
    read_only = tmp_path / "ro"
    if not _mount(read_only, "ro,size=1m"):
        pytest.skip("mounting a read-only tmpfs needs root")
    try:
        assert f"cannot create {read_only / 'run'} (Read-only file system)" in one_line(
            tinycnn("train", *TINY, "--out", read_only / "run"))
        assert f"{read_only} is not writable (Read-only file system)" in one_line(tinycnn("train", *TINY, "--out", read_only))
    finally:
        subprocess.run(["umount", str(read_only)], capture_output=True)


# ---------------------------------------------------------------- damaged files, every reader


@pytest.fixture
def run(tmp_path, reference):
    """A copy of a finished run that a test may damage."""
    copy = tmp_path / "run"
    shutil.copytree(reference, copy)
    (copy / ".lock").unlink(missing_ok=True)
    return copy


def digest(run_dir):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(run_dir.iterdir()) if p.is_file() and p.name != ".lock"}


def in_process_one_line(capsys, argv) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1, err
    return err[0]


def test_a_cut_metrics_file_is_named_by_every_reader_and_repaired_by_resume(run, capsys):
    text = (run / "metrics.jsonl").read_text()
    (run / "metrics.jsonl").write_text(text[: len(text) - 40])  # cut mid-line
    before = digest(run)
    for argv in (["check", str(run)], ["report", str(run)], ["compare", str(run), "--out", str(run.parent / "c.png")]):
        assert f"{run / 'metrics.jsonl'}, line 2" in in_process_one_line(capsys, argv)
    assert digest(run) == before
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert len(read_metrics(run)) == 2 and main(["check", str(run)]) == 1  # a --subset run never passes


def test_a_damaged_run_json_is_named_and_written_again_by_resume(run, capsys):
    (run / "run.json").write_text('{"status": "finished", "epochs_d')
    before = digest(run)
    for argv in (["check", str(run)], ["report", str(run)], ["compare", str(run), "--out", str(run.parent / "c.png")]):
        assert f"{run / 'run.json'}, line 1: not valid JSON" in in_process_one_line(capsys, argv)
    assert digest(run) == before
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert read_run(run)["status"] == "finished" and main(["check", str(run)]) == 1


@pytest.mark.parametrize("what, content, message", [
    ("a dict of something else", {"foo": 1}, "holds a dict of foo, not"),
    ("a list", [1, 2, 3], "holds a list, not"),
    ("best.pt over last.pt", None, "holds best.pt's weights (chosen on validation, with no optimizer state), not a resume point"),
])
def test_a_torch_file_that_is_no_tinycnn_checkpoint_is_one_line(run, capsys, what, content, message):
    info = read_run(run)
    (run / "run.json").write_text(json.dumps({**info, "status": "interrupted"}))  # a run that must load last.pt to go on
    if content is None:
        shutil.copy(run / "best.pt", run / "last.pt")
    else:
        torch.save(content, run / "last.pt")
    before = digest(run)
    assert message in in_process_one_line(capsys, ["train", "--resume", str(run), "--no-progress"])
    if content is not None:  # best.pt holds weights: eval and report can use them
        assert "not a tinycnn checkpoint" in in_process_one_line(capsys, ["eval", str(run)])
        assert "not a tinycnn checkpoint" in in_process_one_line(capsys, ["report", str(run)])
    assert digest(run) == before


@pytest.mark.parametrize("change, key", [('model = "era-s7-6750"', "model"), ("epochs = 2", "epochs")])
def test_a_config_that_disagrees_with_last_pt_is_one_line(run, capsys, change, key):
    (run / "run.json").write_text(json.dumps({**read_run(run), "status": "interrupted"}))  # resume must load last.pt
    config = (run / "config.toml").read_text()
    replacement = {"model": 'model = "tiny-5k"', "epochs": "epochs = 5"}[key]
    (run / "config.toml").write_text(config.replace(change, replacement))
    before = digest(run)
    line = in_process_one_line(capsys, ["train", "--resume", str(run), "--no-progress"])
    assert f"{run / 'config.toml'} disagrees with {run / 'last.pt'}: {key} =" in line
    if key == "model":
        assert "does not fit the network" in in_process_one_line(capsys, ["report", str(run)])
    assert digest(run) == before


def test_small_mistakes_are_one_line(tmp_path, capsys):
    recipe = tmp_path / "latin1.toml"
    recipe.write_bytes('description = "caf\xe9"\n'.encode("latin-1"))
    assert "not UTF-8 text" in in_process_one_line(capsys, ["train", "--recipe", str(recipe), "--out", str(tmp_path / "a")])
    assert "seed must be in [0, 4294967295]" in in_process_one_line(
        capsys, ["train", "--seed", "99999999999999999999", "--subset", "64", "--out", str(tmp_path / "b")])
    assert "--seeds '': expected numbers" in in_process_one_line(capsys, ["train", "--seeds", "", "--out", str(tmp_path / "c")])
    for name in ("a", "b", "c"):
        assert not (tmp_path / name).exists()


def test_a_code_pickle_keeps_torchs_word_and_our_caveat(run, capsys):
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo owned",))

    (run / "last.pt").write_bytes(pickle.dumps({"model": Evil()}))
    line = in_process_one_line(capsys, ["eval", str(run)])
    assert "never runs code a file holds" in line and "only if you trust where it came from" in line


def test_resuming_a_finished_run_says_so_before_loading_any_data(run, capsys, monkeypatch):
    import tinycnn.data.loader

    monkeypatch.setattr(tinycnn.data.loader, "load_splits", lambda *a, **k: pytest.fail("loaded the data"))
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert "already finished (2 epochs)" in capsys.readouterr().out

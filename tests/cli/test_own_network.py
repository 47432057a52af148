"""A network of the user's own, from its file, through every command, on small subsets of
real MNIST; and each way it can go wrong, as one line."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from tinycnn.cli import main
from tinycnn.engine.rundir import read_metrics, read_run
from tinycnn.engine.trainer import Trainer
from tinycnn.recipes import load_recipe

COURSE_NET = Path(__file__).resolve().parents[1] / "fixtures" / "course_net.py"
SMALL = ["--subset", "300", "--epochs", "2", "--batch-size", "64", "--no-progress", "--device", "cpu", "--no-compile", "--no-amp"]


@pytest.fixture
def net_file(tmp_path):
    """A copy of the course-style network that a test may change or delete."""
    path = tmp_path / "my_net.py"
    shutil.copy(COURSE_NET, path)
    return path


def _train(tmp_path, spec, *extra, out="run"):
    return main(["train", "--model", spec, *SMALL, *extra, "--out", str(tmp_path / out)])


def test_a_course_style_network_trains_checks_evaluates_and_reports(tmp_path, net_file, capsys):
    assert _train(tmp_path, f"{net_file}:Net") == 0
    run = tmp_path / "run"
    out = capsys.readouterr().out
    assert "budget era-s7" in out
    info = read_run(run)
    origin = info["model_source"]
    assert origin["file"] == str(net_file.resolve()) and origin["spec"] == f"{net_file.resolve()}:Net"
    import hashlib

    assert origin["sha256"] == hashlib.sha256(net_file.read_bytes()).hexdigest()
    assert (run / "model_source.py").read_text() == net_file.read_text()
    assert info["params"] == sum(p.numel() for p in _import_net(net_file)().parameters())
    assert [m["epoch"] for m in read_metrics(run)] == [1, 2]

    assert main(["check", str(run)]) == 1  # a --subset run never passes
    assert "FAIL" in capsys.readouterr().out
    assert main(["eval", str(run)]) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert main(["report", str(run)]) == 0
    report = (run / "report.md").read_text()
    assert "## The network's source" in report and "return F.log_softmax(self.scores(x))" in report
    assert main(["compare", str(run), "--out", str(tmp_path / "compare.png")]) == 0


def _import_net(path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("course_net_for_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Net


def test_log_softmax_outputs_train_as_the_courses_nll_loss(tmp_path):
    """Cross-entropy on log-probabilities is the NLL loss of the notebooks: log_softmax of
    log-probabilities changes nothing."""
    torch.manual_seed(0)
    net = _import_net(COURSE_NET)()
    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    log_probs = net(x)
    torch.testing.assert_close(torch.nn.functional.cross_entropy(log_probs, y), torch.nn.functional.nll_loss(log_probs, y))


def test_a_summary_of_a_file(net_file, capsys):
    assert main(["summary", f"{net_file}:NetWithDim"]) == 0
    out = capsys.readouterr().out
    assert "receptive field" in out.lower() and "AvgPool2d" in out


def test_a_function_gets_the_recipes_dropout(tmp_path, net_file):
    assert _train(tmp_path, f"{net_file}:make_net", "--dropout", "0.2", "--epochs", "1") == 0
    assert "dropout = 0.2" in (tmp_path / "run" / "config.toml").read_text()


def test_resume_rebuilds_the_network_from_its_file(tmp_path, net_file, capsys):
    config = load_recipe("default", model=f"{net_file}:Net", subset=300, epochs=2, batch_size=64, device="cpu",
                         compile=False, amp=False)
    trainer = Trainer(config, tmp_path / "cut", progress=False, log=lambda m: None)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(on_batch=lambda epoch, b: trainer.request_stop() if (epoch, b) == (1, 1) else None)
    assert main(["train", "--resume", str(tmp_path / "cut"), "--no-progress"]) == 0
    assert len(read_metrics(tmp_path / "cut")) == 2


def test_a_changed_or_missing_file_is_refused_with_the_way_on(tmp_path, net_file, capsys):
    assert _train(tmp_path, f"{net_file}:Net", "--epochs", "1") == 0
    run = tmp_path / "run"
    capsys.readouterr()
    net_file.write_text(net_file.read_text() + "\n# changed\n")
    for argv in (["eval", str(run)], ["report", str(run)], ["train", "--resume", str(run)]):
        assert main(argv) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "has changed since the run" in err
        assert f"--model {run / 'model_source.py'}:Net" in err
    assert main(["eval", str(run), "--model", f"{run / 'model_source.py'}:Net"]) == 0  # the user names the copy
    net_file.unlink()
    assert main(["eval", str(run)]) == 1
    assert "which is gone" in capsys.readouterr().err


def test_a_file_inside_the_run_directory_is_not_imported_on_its_own(tmp_path, net_file, capsys):
    inside = tmp_path / "run" / "net.py"
    inside.parent.mkdir()
    shutil.copy(net_file, inside)
    assert main(["train", "--model", f"{inside}:Net", *SMALL, "--epochs", "1", "--out", str(tmp_path / "run" / "r")]) == 0
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "run" / "r")]) == 0  # the file lies outside run/r
    shutil.copytree(tmp_path / "run" / "r", tmp_path / "run" / "r2")
    run2 = tmp_path / "run" / "r2"
    info = read_run(run2)
    info["model_source"]["file"] = str(run2 / "model_source.py")
    info["model_source"]["spec"] = f"{run2 / 'model_source.py'}:Net"
    (run2 / "run.json").write_text(json.dumps(info))
    assert main(["eval", str(run2)]) == 1
    assert "does not import on its own" in capsys.readouterr().err


def test_parallel_seeds_import_the_file_in_each_process(tmp_path, net_file, capsys):
    assert _train(tmp_path, f"{net_file}:Net", "--epochs", "1", "--subset", "200", "--seeds", "0,1", "--parallel") == 0
    for seed in (0, 1):
        assert read_run(tmp_path / "run" / f"seed-{seed}")["status"] == "finished"
    assert json.loads((tmp_path / "run" / "seeds.json").read_text())["model_source"]["sha256"]


def test_a_recipe_names_a_file_relative_to_itself(tmp_path, net_file):
    recipe = tmp_path / "mine.toml"
    recipe.write_text('extends = "default"\nmodel = "my_net.py:Net"\n')
    assert load_recipe(str(recipe)).model == f"{net_file.resolve()}:Net"


@pytest.mark.parametrize("body, name, message", [
    ("import torch\nraise RuntimeError('no GPU here')\n", "Net", "does not import (RuntimeError: no GPU here)"),
    ("def broken(:\n", "Net", "does not import (SyntaxError"),
    ("import torch\nclass Other(torch.nn.Module):\n    pass\n", "Net", "has no 'Net'; it defines Other"),
    ("def Net():\n    raise ValueError('bad width')\n", "Net", "failed (ValueError: bad width)"),
    ("import torch\ndef Net():\n    return torch.nn.Conv2d(1, 10, 3)\n", "Net", "it must be (N, C) logits"),
    ("def Net():\n    return 3\n", "Net", "returned int, not an nn.Module"),
])
def test_a_file_that_cannot_give_a_network_is_one_line(tmp_path, capsys, body, name, message):
    path = tmp_path / "bad.py"
    path.write_text(body)
    assert _train(tmp_path, f"{path}:{name}") == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and str(path) in err
    assert not (tmp_path / "run").exists()


def test_a_missing_file_or_module_is_one_line(tmp_path, capsys):
    assert _train(tmp_path, f"{tmp_path / 'nope.py'}:Net") == 1
    assert "no such file" in capsys.readouterr().err
    assert _train(tmp_path, "no_such_package.nets:Net") == 1
    assert "does not import (ModuleNotFoundError" in capsys.readouterr().err


def test_a_module_spec(tmp_path, monkeypatch, capsys):
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    shutil.copy(COURSE_NET, tmp_path / "mypkg" / "nets.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert _train(tmp_path, "mypkg.nets:NetWithDim", "--epochs", "1") == 0
    assert read_run(tmp_path / "run")["model_source"]["module"] == "mypkg.nets"


def test_an_experiment_step_names_a_file_relative_to_itself(tmp_path, net_file, capsys):
    experiment = tmp_path / "mine.toml"
    experiment.write_text('[[step]]\nname = "mine"\ntarget = "my own network"\nrecipe = "default"\n'
                          '[step.overrides]\nmodel = "my_net.py:Net"\ncompile = false\namp = false\n')
    out = tmp_path / "exp"
    assert main(["experiment", str(experiment), "--subset", "200", "--epochs", "1", "--seeds", "0", "--out", str(out)]) == 0
    assert json.loads((out / "mine" / "seeds.json").read_text())["model_source"]["file"] == str(net_file.resolve())
    assert (out / "mine" / "model_source.py").exists() and (out / "experiment.md").exists()


def test_lr_find_and_bench_take_a_file(tmp_path, net_file, capsys):
    assert main(["lr-find", "--model", f"{net_file}:Net", "--subset", "256", "--batch-size", "64", "--steps", "12",
                 "--device", "cpu", "--out", str(tmp_path / "find.png")]) == 0
    assert json.loads((tmp_path / "find.json").read_text())["model"] == f"{net_file.resolve()}:Net"
    assert main(["bench", "--model", f"{net_file}:Net", "--images", "256", "--rounds", "1", "--device", "cpu",
                 "--a", "compile=false", "--b", "compile=false"]) == 0
    assert "B/A" in capsys.readouterr().out


def test_seeds_of_a_network_that_cannot_be_stacked_train_one_after_another(tmp_path, net_file, monkeypatch):
    """On a GPU seeds are stacked by default; a network that is no nn.Sequential of layers
    trains them one after another, and says so in one line."""
    from tinycnn.seeds import runner
    from tinycnn.seeds.runner import choose_stacking

    monkeypatch.setattr(runner, "select_device", lambda name: torch.device("cuda"))
    said = []
    config = load_recipe("default", model=f"{net_file}:Net")
    assert choose_stacking(config, [0, 1], None, said.append) is False
    assert said == ["seeds run one after another: cannot train seeds stacked: Net is not an nn.Sequential of layers"]

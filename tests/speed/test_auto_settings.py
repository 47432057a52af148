"""compile = "auto" and amp = "auto": decided for the machine once, recorded in the run."""

import re
from pathlib import Path

import pytest
import torch

from tinycnn.analysis.experiment import load_experiment
from tinycnn.cli import main
from tinycnn.config import TrainConfig
from tinycnn.data.loader import BatchLoader, load_splits
from tinycnn.engine.rundir import read_config
from tinycnn.engine.trainer import Trainer
from tinycnn.errors import TinycnnError
from tinycnn.recipes import list_recipes, load_recipe
from tinycnn.speed import auto_settings
from tinycnn.speed.auto_settings import (
    COMPILE_MIN_STEPS,
    describe_auto,
    resolve_auto,
    training_steps,
)


@pytest.fixture
def machine(monkeypatch):
    """Set what the machine offers: native bf16, a C++ compiler, a GPU."""

    def offer(bf16=True, compiler="g++", gpu=False):
        monkeypatch.setattr(auto_settings, "cpu_has_native_bf16", lambda: bf16)
        monkeypatch.setattr(auto_settings, "cpp_compiler", lambda: compiler)
        import tinycnn.device

        real = tinycnn.device.select_device
        monkeypatch.setattr(tinycnn.device, "select_device", lambda name: torch.device("cuda") if gpu else real(name))

    return offer


def test_a_full_default_run_on_a_cpu_with_bf16_and_a_compiler_is_compiled_in_bf16(machine):
    machine(bf16=True, compiler="g++")
    config = resolve_auto(load_recipe("default"))
    assert (config.compile, config.amp) == (True, True)
    assert config.changes_from(load_recipe("era-s7-step6")) == {"ema": (0.0, 0.995), "compile": (False, True), "amp": (False, True)}


def test_each_missing_capability_turns_its_setting_off_with_a_reason(machine):
    machine(bf16=False)
    decided = describe_auto(load_recipe("default"))
    assert decided["amp"] == (False, "this CPU has no native bf16 (AVX-512 BF16 or AMX)")
    assert decided["compile"] == (True, "7,035 training steps in fp32, compiled with g++")
    machine(bf16=True, compiler=None)
    decided = describe_auto(load_recipe("default"))
    assert decided["amp"][0] is True and decided["compile"][0] is False and "no C++ compiler" in decided["compile"][1]


def test_compile_does_not_depend_on_the_arithmetic_and_names_it(machine):
    machine(bf16=False)
    assert describe_auto(load_recipe("default", amp=True)) == {"compile": (True, "7,035 training steps in bf16, compiled with g++")}
    machine(bf16=True)
    assert describe_auto(load_recipe("default", amp=False)) == {"compile": (True, "7,035 training steps in fp32, compiled with g++")}


def test_short_runs_are_not_compiled(machine):
    machine()
    few = load_recipe("default", epochs=1)  # 469 steps
    assert describe_auto(few)["compile"] == (False, f"469 training steps, fewer than the {COMPILE_MIN_STEPS:,} that win back compiling")
    assert resolve_auto(load_recipe("default", subset=256)).compile is False
    assert resolve_auto(load_recipe("default", epochs=15)).compile is True


def test_on_a_gpu_neither_is_used(machine):
    machine(gpu=True)
    decided = describe_auto(load_recipe("default"))
    assert [value for value, _ in decided.values()] == [False, False]


def test_explicit_values_are_left_alone_and_shipped_reproductions_have_no_auto(machine):
    machine()
    assert describe_auto(load_recipe("default", compile=False, amp=True)) == {}
    for name in list_recipes():
        config = load_recipe(name)
        if name.startswith("era-"):  # the write-ups' own arithmetic: eager fp32
            assert (config.compile, config.amp) == (False, False), name


@pytest.mark.parametrize("subset, val_size, batch", [(None, 0, 128), (1000, 0, 64), (None, 10000, 128), (300, 0, 512)])
def test_training_steps_is_the_loaders_length_times_epochs(subset, val_size, batch):
    config = load_recipe("default", subset=subset, val_size=val_size, batch_size=batch, epochs=3)
    splits = load_splits(config.dataset, val_size=val_size, subset=subset)
    assert training_steps(config) == 3 * len(BatchLoader(*splits["train"], batch, shuffle=True, seed=0))


def test_native_bf16_agrees_with_the_cpu_flags():
    flags_file = Path("/proc/cpuinfo")
    if not flags_file.exists():
        pytest.skip("no /proc/cpuinfo to compare with")
    flags = set(re.search(r"^flags\s*:(.*)$", flags_file.read_text(), re.M).group(1).split())
    assert auto_settings.cpu_has_native_bf16() == bool(flags & {"avx512_bf16", "amx_bf16"})


def test_a_run_records_what_was_decided_and_a_resume_keeps_it(tmp_path, machine):
    machine(bf16=False)
    run = tmp_path / "run"
    config = load_recipe("default", subset=256, epochs=1, device="cpu", threads=1)
    assert config.amp == "auto"
    Trainer(config, run, progress=False, log=lambda _: None).fit()
    saved = read_config(run)
    assert (saved.compile, saved.amp) == (False, False)
    assert 'amp = false' in (run / "config.toml").read_text()
    # Another machine would decide otherwise; the run's own record wins.
    machine(bf16=True)
    assert resolve_auto(saved).amp is False


def test_train_says_each_decision(tmp_path, capsys, machine):
    machine(bf16=False)
    assert main(["train", "--subset", "256", "--epochs", "1", "--out", str(tmp_path / "a"), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "amp = false (auto: this CPU has no native bf16 (AVX-512 BF16 or AMX))" in text
    assert f"compile = false (auto: 2 training steps, fewer than the {COMPILE_MIN_STEPS:,} that win back compiling)" in text


def test_a_flag_replaces_auto(tmp_path, capsys, machine):
    machine(bf16=True)
    assert main(["train", "--subset", "256", "--epochs", "1", "--no-amp", "--out", str(tmp_path / "b"), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "amp = " not in text and "compile = false (auto:" in text  # a decision line for compile only
    assert read_config(tmp_path / "b").amp is False


@pytest.mark.parametrize("value", ['"yes"', "1"])
def test_a_wrong_value_in_a_recipe_is_one_line(tmp_path, value):
    recipe = tmp_path / "r.toml"
    recipe.write_text(f"amp = {value}\n")
    with pytest.raises(TinycnnError, match=r'amp = .* should be true, false or "auto"'):
        load_recipe(str(recipe))
    with pytest.raises(TinycnnError, match=r'compile must be true, false or "auto"'):
        TrainConfig(compile="sometimes").validate()


def test_an_experiment_decides_once_per_step(tmp_path, machine):
    machine(bf16=True)
    path = tmp_path / "e.toml"
    path.write_text('[[step]]\nname = "a"\ntarget = "t"\nrecipe = "default"\n')
    step = load_experiment(path, subset=256, epochs=1).steps[0]
    assert (step.config.compile, step.config.amp) == (False, True)


def test_a_step_refuses_settings_left_undecided():
    from tinycnn.engine.step import TrainStep
    from tinycnn.models.build import build_model

    config = load_recipe("default", device="cpu")
    with pytest.raises(TinycnnError, match="resolve_auto"):
        TrainStep(build_model(config), config, torch.device("cpu"), lambda logits, y: logits.sum())

"""Freed host memory kept mapped between training steps (host_memory.py)."""

import json
import platform
import subprocess
import sys

import pytest
import torch

from tinycnn import stacked_trainer, train
from tinycnn.config import config_from_dict
from tinycnn.host_memory import keep_freed_memory
from tinycnn.recipes import load_recipe

glibc_only = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")

# A 40 MiB tensor filled and freed again and again: above glibc's largest automatic mmap
# threshold (32 MiB on 64-bit), so by default each one is mapped afresh and faults on its
# pages. Kept, the heap takes a few rounds to hold a free block that fits (the small
# allocations between the first blocks split them): the faults are counted after 20.
FAULTS_PER_TENSOR = """
import json, resource, sys, torch
from tinycnn.host_memory import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else False
for _ in range(20):
    torch.empty(10 * 2**20).fill_(1.0)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    torch.empty(10 * 2**20).fill_(1.0)
print(json.dumps({"kept": kept, "faults": (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10}))
"""


def _faults_per_tensor(mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", FAULTS_PER_TENSOR, mode], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@glibc_only
def test_freed_tensors_are_not_mapped_again():
    default, kept = _faults_per_tensor("default"), _faults_per_tensor("keep")
    assert kept["kept"] is True and default["kept"] is False
    assert default["faults"] >= 10  # mapped anew each time: at least one fault per 4 MiB
    assert kept["faults"] <= default["faults"] / 10


def test_other_devices_change_nothing():
    # activations on a GPU live in its memory: the host's allocator is left as it is
    assert keep_freed_memory("cuda") is False and keep_freed_memory(torch.device("meta")) is False


def _record_calls(monkeypatch, module):
    calls = []
    monkeypatch.setattr(module, "keep_freed_memory", lambda device: calls.append(torch.device(device).type) or True)
    return calls


def test_trainer_keeps_freed_memory_on_the_cpu(tmp_path, monkeypatch):
    calls = _record_calls(monkeypatch, train)
    config = load_recipe("default", subset=256, epochs=1, batch_size=128, device="cpu")
    train.Trainer(config, tmp_path / "run", progress=False, log=lambda m: None).fit()
    assert calls == ["cpu"]


def test_stacked_trainer_keeps_freed_memory_on_the_cpu(tmp_path, monkeypatch):
    calls = _record_calls(monkeypatch, stacked_trainer)
    config = config_from_dict({**load_recipe("default").to_dict(), "subset": 256, "epochs": 1, "batch_size": 128, "device": "cpu"})
    stacked_trainer.StackedTrainer(config, [0, 1], tmp_path / "run", progress=False, log=lambda m: None).fit()
    assert calls == ["cpu"]

"""Checkpoints load with weights_only: a file can never run code."""

import pickle

import pytest
import torch

from tinycnn.engine.checkpoint import load_checkpoint
from tinycnn.errors import TinycnnError


def test_checkpoint_cannot_run_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this must not run",))

    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        torch.save({"model": Evil()}, f, pickle_module=pickle)
    with pytest.raises(TinycnnError, match="not a loadable tinycnn checkpoint"):
        load_checkpoint(path)
    (tmp_path / "trunc.pt").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(TinycnnError, match="not a loadable"):
        load_checkpoint(tmp_path / "trunc.pt")

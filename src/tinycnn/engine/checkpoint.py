"""Checkpoints: written atomically, loaded with weights_only=True so that a file can never run code."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from tinycnn.atomic import atomic_write_bytes
from tinycnn.errors import TinycnnError


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | Path, map_location="cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise TinycnnError(f"{path}: no such checkpoint")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # a truncated zip, a pickle with code in it, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TinycnnError(f"{path}: not a loadable tinycnn checkpoint ({first[:200]})") from None


def trained_weights(state: dict[str, Any]) -> dict[str, Any]:
    """The model weights a checkpoint's run evaluates and keeps: the weight average where
    the run kept one (its configuration's `ema`), else the trained weights themselves."""
    average = state.get("average")
    return average["model"] if average else state["model"]

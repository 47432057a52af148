"""Checkpoints: written atomically, loaded with weights_only=True so that a file can never run
code, and checked to be the kind of tinycnn checkpoint the caller needs."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from tinycnn.atomic import atomic_write_bytes
from tinycnn.errors import TinycnnError

# What each use needs of a checkpoint, and what the file should have been.
KINDS = {
    "resume": (("model", "optimizer", "epochs_done", "partial", "config", "rng_cpu"), "a resume point, last.pt as tinycnn train writes it"),
    "stacked": (("model", "optimizer", "seeds", "epochs_done", "partial", "config"), "a stacked run's resume point, stacked.pt"),
    "weights": (("model", "config"), "a tinycnn checkpoint (last.pt or best.pt)"),
}


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | Path, map_location="cpu", kind: str = "weights") -> dict[str, Any]:
    """The checkpoint at `path`, checked to hold what `kind` needs; one line otherwise."""
    path = Path(path)
    if not path.exists():
        raise TinycnnError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # a truncated zip, a pickle with code in it, ...
        raise TinycnnError(f"{path}: not a loadable tinycnn checkpoint ({_reason(exc)}); tinycnn loads checkpoints "
                           "with weights_only=True and never runs code a file holds: load it any other way only "
                           "if you trust where it came from") from None
    needed, expected = KINDS[kind]
    missing = [key for key in needed if not isinstance(state, dict) or key not in state]
    if missing:
        raise TinycnnError(f"{path}: a torch file, but it holds {_describe(state)}, not {expected}")
    return state


def _reason(exc: Exception) -> str:
    """The line of torch's message that says what is wrong: the global it refused, or its first."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    for line in lines:
        if "Unsupported global" in line or "Unsupported operand" in line:
            return line
    return lines[0] if lines else type(exc).__name__


def _describe(state: Any) -> str:
    if not isinstance(state, dict):
        return f"a {type(state).__name__}"
    if {"model", "epoch", "val_acc"} <= state.keys():
        return "best.pt's weights (chosen on validation, with no optimizer state)"
    keys = ", ".join(map(str, list(state)[:5])) + (", ..." if len(state) > 5 else "")
    return f"a dict of {keys}" if state else "an empty dict"


def load_weights(model, state: dict[str, Any], path: str | Path, network: str) -> None:
    """The weights a checkpoint's run kept, into `model`; one line where they do not fit it
    (a config.toml or a --model that names another network than the one trained)."""
    try:
        model.load_state_dict(trained_weights(state))
    except RuntimeError as exc:
        detail = next((line.strip() for line in str(exc).splitlines()[1:] if line.strip()), _reason(exc))
        raise TinycnnError(f"{path} does not fit the network {network} ({detail}); was the run trained with another?") from None


def trained_weights(state: dict[str, Any]) -> dict[str, Any]:
    """The model weights a checkpoint's run evaluates and keeps: the weight average where
    the run kept one (its configuration's `ema`), else the trained weights themselves."""
    average = state.get("average")
    return average["model"] if average else state["model"]


def restore_training(state: dict[str, Any], model, optimizer, scheduler, average, device: torch.device) -> None:
    """Weights, optimizer, schedule, weight average and torch's generators from a resume
    point (a Trainer's last.pt or a stacked run's stacked.pt)."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state["scheduler"] is not None:
        scheduler.load_state_dict(state["scheduler"])
    if average is not None:
        average.load_state_dict(state["average"])
    torch.set_rng_state(state["rng_cpu"].cpu())
    if "rng_cuda" in state:
        torch.cuda.set_rng_state(state["rng_cuda"].cpu(), device)

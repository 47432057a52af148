"""Named model factories, timm-style: `@register_model` stores a factory, `create_model` builds it.

    from tinycnn.models import create_model, list_models, model_info
    list_models("era-s7*")                        # ['era-s7-147k', 'era-s7-10616', ...]
    model = create_model("era-s7-6750", dropout=0.1)
    model_info("era-s7-6750").n_logits            # 10

Every model returns raw logits of shape (N, n_logits); training takes cross-entropy on them,
which equals the write-ups' log_softmax followed by nll_loss.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

from tinycnn.errors import TinycnnError


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about one model, without building it."""

    name: str
    factory: Callable[..., Any]
    description: str  # one line: what the network is
    origin: str  # where the design comes from, e.g. "ERA Session 7 write-up, step 6"
    link: str | None = None  # repository the origin points to, when it gives one
    n_logits: int = 10  # width of the output; 16 for the seeds that end without a 10-way head
    overrides: dict[str, Any] = field(default_factory=dict)  # keyword -> default the factory takes


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(
    name: str,
    *,
    description: str,
    origin: str,
    link: str | None = None,
    n_logits: int = 10,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register `factory` under `name`. Keyword arguments of the factory are its overrides."""

    def decorate(factory: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        overrides = {
            p.name: p.default
            for p in inspect.signature(factory).parameters.values()
            if p.default is not inspect.Parameter.empty
        }
        _REGISTRY[name] = ModelInfo(name, factory, description, origin, link, n_logits, overrides)
        return factory

    return decorate


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching the fnmatch `pattern`, in registration order (seeds first); a
    pattern without wildcards matches the names that contain it ("tiny": every tiny-*)."""
    if not any(c in pattern for c in "*?["):
        pattern = f"*{pattern}*"
    return [name for name in _REGISTRY if fnmatch.fnmatchcase(name, pattern)]


def model_info(name: str) -> ModelInfo:
    """The metadata of `name`; TinycnnError with the closest names when there is no such model."""
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "."
        raise TinycnnError(
            f"unknown model {name!r}{hint} Run `tinycnn models` to list the registered models."
        ) from None


def create_model(name: str, **overrides: Any):
    """Build the registered model `name`; `overrides` (e.g. dropout=0.05) go to its factory.

    An override given as None means "the factory's default", so CLI flags can pass straight through.
    """
    info = model_info(name)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(overrides) - set(info.overrides))
    if unknown:
        accepted = ", ".join(f"{k}={v!r}" for k, v in info.overrides.items()) or "none"
        raise TinycnnError(
            f"model {name!r} takes no override {', '.join(unknown)}; it accepts: {accepted}."
        )
    p = overrides.get("dropout", 0.0)
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
        raise TinycnnError(f"dropout must be a number in [0, 1), got {p!r}.")
    return info.factory(**overrides)

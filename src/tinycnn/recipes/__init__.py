"""Recipes: TOML files of TrainConfig values, one per system of the ERA write-ups, plus ours.

    tinycnn recipes                  # list them
    tinycnn train --recipe era-s7-step6

A recipe may name another in `extends = "NAME"` and change only what differs.
"""

from __future__ import annotations

from pathlib import Path

from tinycnn.config import TrainConfig, anchor_model_file, config_from_dict, read_toml
from tinycnn.errors import TinycnnError

RECIPE_DIR = Path(__file__).parent


def list_recipes() -> list[str]:
    return sorted(p.stem for p in RECIPE_DIR.glob("*.toml"))


def recipe_path(name_or_file: str) -> Path:
    """A shipped recipe's name, or a path to a .toml file."""
    path = Path(name_or_file)
    if path.suffix == ".toml" or path.exists():
        if not path.exists():
            raise TinycnnError(f"recipe file {path} does not exist")
        return path
    shipped = RECIPE_DIR / f"{name_or_file}.toml"
    if not shipped.exists():
        import difflib

        close = difflib.get_close_matches(name_or_file, list_recipes(), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise TinycnnError(f"unknown recipe {name_or_file!r}; {hint}`tinycnn recipes` lists them")
    return shipped


def recipe_values(name_or_file: str, _seen: tuple[str, ...] = ()) -> dict:
    """The recipe's values with its `extends` chain resolved (later files win)."""
    path = recipe_path(name_or_file)
    if str(path) in _seen:
        raise TinycnnError(f"{path}: `extends` loops back on itself")
    values = read_toml(path)
    if isinstance(values.get("model"), str):  # a network's file is relative to the recipe that names it
        values["model"] = anchor_model_file(values["model"], path.parent)
    spec = values.get("spec")
    if isinstance(spec, str) and spec.endswith(".toml") and not Path(spec).expanduser().is_absolute():
        values["spec"] = str((path.parent / Path(spec).expanduser()).resolve())  # so is a spec's file
    parent = values.pop("extends", None)
    if parent is not None:
        if not isinstance(parent, str):
            raise TinycnnError(f"{path}: extends = {parent!r} should be a recipe name")
        values = {**recipe_values(parent, _seen + (str(path),)), **values}
    return values


def load_recipe(name_or_file: str, **overrides) -> TrainConfig:
    """The validated configuration of a recipe, with `overrides` (None values ignored) applied."""
    path = recipe_path(name_or_file)
    values = {**recipe_values(name_or_file), "name": path.stem}
    config = config_from_dict(values, where=str(path))
    changed = {k: v for k, v in overrides.items() if v is not None}
    if changed:
        config = config_from_dict({**config.to_dict(), **changed}, where="command line")
    return config.validate()

"""Where a run's network came from, recorded when the run starts and checked whenever a
command rebuilds the network from the run's files.

run.json's "model_source" holds the spec (`/abs/path/net.py:Net` or `package.module:Net`),
the file and its SHA-256; the run keeps a copy of the file, model_source.py, that report.md
shows. A command that rebuilds the network (eval, report, train --resume) imports the
recorded file only if it is still there with the same SHA-256 and lies outside the run
directory: a run directory that came from elsewhere never runs its own code unless the user
names that file with --model.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from tinycnn.atomic import atomic_write_text
from tinycnn.errors import TinycnnError
from tinycnn.models import source


def record(run_dir: Path, model: str, python_object=None) -> dict | None:
    """Write the copy of the network's source into run_dir and return run.json's entry;
    None for a zoo network."""
    if not source.is_spec(model):
        return None
    where, _, name = model.rpartition(":")
    if where == source.IN_MEMORY:
        text = _python_source(python_object)
        entry = {"spec": model, "given_from": "python", "sha256": None, "file": None}
    else:
        origin = source.parse_spec(model)
        text = origin.source_text()
        entry = {"spec": origin.spec, "file": str(origin.file) if origin.file else None,
                 "module": origin.module, "sha256": origin.sha256()}
    if text is not None:
        atomic_write_text(run_dir / source.COPY_NAME, text)
        entry["copy"] = source.COPY_NAME
    return entry


def _python_source(obj) -> str | None:
    """The source of a class or function given from Python, where Python can find it: a
    class of a notebook has no file, but its methods' code does (Jupyter keeps each cell)."""
    target = obj if obj is None or isinstance(obj, type) or inspect.isfunction(obj) else type(obj)
    if target is None:
        return None
    try:
        return inspect.getsource(target)
    except (OSError, TypeError):
        pass
    if not isinstance(target, type):
        return None
    methods = []
    for value in vars(target).values():
        try:
            methods.append(inspect.getsource(value))
        except (OSError, TypeError):
            continue
    if not methods:
        return None
    bases = ", ".join(base.__name__ for base in target.__bases__)
    return f"class {target.__name__}({bases}):  # its methods, as Python found them\n" + "\n".join(methods)


def model_to_build(run_dir: Path, recorded: dict | None, model: str, override: str | None = None) -> str:
    """The spec to rebuild a run's network from: `override` as the user names it, else the
    recorded file, checked; one line when it has changed, is gone, or lies in the run."""
    if override is not None:
        return source.resolve(override)
    if not source.is_spec(model):
        return model
    if model.startswith(source.IN_MEMORY + ":") or (recorded or {}).get("given_from") == "python":
        source.parse_spec(model)  # one line saying how to give it again
    if recorded is None:
        raise TinycnnError(f"{run_dir}: no run.json records where its network {model} came from; "
                           f"name the file to rebuild it from with --model path/to/file.py:{model.rpartition(':')[2]}")
    origin = source.parse_spec(recorded["spec"])
    name = origin.name
    copy = run_dir / source.COPY_NAME
    how = (f"to use the run's own copy, add --model {copy}:{name}" if copy.exists()
           else f"name the file to use with --model path/to/file.py:{name}")
    if origin.file is not None and _inside(origin.file, run_dir):
        raise TinycnnError(f"{run_dir}: its network comes from {origin.file}, inside the run directory, which tinycnn "
                           f"does not import on its own; if you trust it, add --model {origin.file}:{name}")
    found = origin.sha256()
    if found is None:
        raise TinycnnError(f"{run_dir}: its network came from {origin.where}, which is gone; {how}")
    if recorded.get("sha256") and found != recorded["sha256"]:
        raise TinycnnError(f"{run_dir}: its network came from {origin.where}, which has changed since the run "
                           f"(its SHA-256 differs); {how}")
    return origin.spec


def _inside(path: Path, directory: Path) -> bool:
    try:
        path.resolve().relative_to(directory.resolve())
    except ValueError:
        return False
    return True


def config_to_rebuild(run_dir: Path, override: str | None = None):
    """The run's configuration with its network's spec checked (or replaced by `override`),
    ready to rebuild the network from."""
    import dataclasses

    from tinycnn.engine.rundir import is_multi_seed, read_config, read_run, read_seeds

    config = read_config(run_dir)
    if override is None and not source.is_spec(config.model):
        return config  # a zoo network: nothing to check, and run.json need not even be readable
    if is_multi_seed(run_dir):
        recorded = read_seeds(run_dir).get("model_source")
    else:
        recorded = read_run(run_dir).get("model_source") if (run_dir / "run.json").exists() else None
    model = model_to_build(run_dir, recorded, config.model, override)
    return config if model == config.model else dataclasses.replace(config, model=model)


def network_builder(run_dir: Path, model=None):
    """(the run's configuration, a function building a fresh network of the run's
    architecture): from its recorded file, checked; from `model` as a `file.py:Name` spec;
    or from a network given from Python (a class or function, called as the trainer calls
    it, or an instance, copied)."""
    import copy

    import torch

    from tinycnn.engine.rundir import read_config
    from tinycnn.models.build import build_model

    if model is None or isinstance(model, str):
        config = config_to_rebuild(run_dir, model)
        return config, lambda: build_model(config)
    config = read_config(run_dir)
    if isinstance(model, torch.nn.Module):
        return config, lambda: copy.deepcopy(model)
    kwargs = {"dropout": config.dropout} if config.dropout is not None and source.takes_dropout(model) else {}
    return config, lambda: model(**kwargs)

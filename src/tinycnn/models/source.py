"""Networks of the user's own: `path/to/file.py:Name` or `package.module:Name`.

    tinycnn train --model my_net.py:Net
    tinycnn summary my_net.py:Net

`Name` is an nn.Module subclass or a function that returns one. It is called with no
arguments, or with `dropout=` where it takes that argument and the recipe sets one. A run
records where its network came from (run.json's "model_source": the spec, the file's
absolute path and SHA-256) and keeps a copy of the file (model_source.py); commands that
rebuild the network later import the recorded file only if its SHA-256 still matches, and
never import anything from a run directory unless the user names that file.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from tinycnn.errors import TinycnnError

COPY_NAME = "model_source.py"  # the copy of the network's file kept in a run directory
# config.model of a network handed over from Python (a class, a function or an instance
# defined in a notebook or a script): "<python>:Net". Nothing can import it back.
IN_MEMORY = "<python>"


def is_spec(model: str) -> bool:
    """Whether a model name is a `file.py:Name` or `module:Name` spec (zoo names have no colon)."""
    return ":" in model


def in_memory_name(obj) -> str:
    """config.model for a network given from Python: its module's spec where that module can
    be imported again (not a notebook's or a script's __main__), else "<python>:Name"."""
    target = obj if isinstance(obj, type) or inspect.isfunction(obj) else type(obj)
    module, name = getattr(target, "__module__", None), getattr(target, "__qualname__", type(target).__name__)
    if module and module != "__main__" and "<" not in name and "." not in name and not module.startswith("tinycnn_user_model_") \
            and _module_file(module) is not None:  # a module Python finds again by its name
        return f"{module}:{name}"
    if module and module.startswith("tinycnn_user_model_"):  # a class of a file given as a spec
        path = getattr(sys.modules.get(module), "__file__", None)
        if path:
            return f"{Path(path).resolve()}:{name}"
    return f"{IN_MEMORY}:{name.split('.')[-1]}"


def resolve(model: str, base: Path | None = None) -> str:
    """A zoo name as it is; a spec with its file made absolute (relative to `base`, or the
    current directory), so that a run records where its network is wherever it is read from."""
    if not is_spec(model) or model.startswith(IN_MEMORY + ":"):
        return model
    return parse_spec(model, base).spec


@dataclass(frozen=True)
class ModelSource:
    """Where a network comes from: a file (absolute path) or an importable module, and a name in it."""

    spec: str  # as stored in config.toml: "/abs/path/net.py:Net" or "package.module:Net"
    name: str
    file: Path | None  # the .py file, for a file spec
    module: str | None  # the module, for a module spec

    @property
    def where(self) -> str:
        return str(self.file) if self.file is not None else self.module

    def sha256(self) -> str | None:
        """The file's SHA-256 (a module's own file where it has one)."""
        path = self.file if self.file is not None else _module_file(self.module)
        return hashlib.sha256(path.read_bytes()).hexdigest() if path is not None and path.is_file() else None

    def source_text(self) -> str | None:
        path = self.file if self.file is not None else _module_file(self.module)
        return path.read_text(encoding="utf-8", errors="replace") if path is not None and path.is_file() else None


def parse_spec(spec: str, base: Path | None = None) -> ModelSource:
    """`file.py:Name` (a path, relative to `base` or the current directory) or `module:Name`."""
    where, sep, name = spec.rpartition(":")
    if where == IN_MEMORY:
        raise TinycnnError(f"the network {name} was given from Python and cannot be imported back: give it again "
                           f"(tinycnn.load_run(path, model={name})), or name its file: --model path/to/file.py:{name}")
    if not sep or not where or not name.isidentifier():
        raise TinycnnError(f"--model {spec!r}: expected a zoo name, path/to/file.py:Name or package.module:Name")
    looks_like_file = where.endswith(".py") or "/" in where or "\\" in where
    if looks_like_file:
        path = Path(where).expanduser()
        if not path.is_absolute():
            path = (base or Path.cwd()) / path
        path = path.resolve()
        return ModelSource(f"{path}:{name}", name, path, None)
    if not all(part.isidentifier() for part in where.split(".")):
        raise TinycnnError(f"--model {spec!r}: {where!r} is neither a .py file nor a module name")
    return ModelSource(f"{where}:{name}", name, None, where)


def _module_file(module: str | None) -> Path | None:
    if module is None:
        return None
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    return Path(found.origin) if found is not None and found.origin and found.origin.endswith(".py") else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def load_factory(source: ModelSource) -> Callable[..., Any]:
    """The class or function `source` names, imported; one line on whatever goes wrong."""
    if source.file is not None:
        if not source.file.is_file():
            raise TinycnnError(f"model file {source.file}: no such file")
        module_name = "tinycnn_user_model_" + hashlib.sha256(str(source.file).encode()).hexdigest()[:12]
        spec = importlib.util.spec_from_file_location(module_name, source.file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # dataclasses and pickling look the module up there
        try:
            spec.loader.exec_module(module)
        except BaseException as exc:  # a syntax error, a failed import, an error at import time
            sys.modules.pop(module_name, None)
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise TinycnnError(f"model file {source.file} does not import ({_first_line(exc)})") from None
    else:
        try:
            module = importlib.import_module(source.module)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise TinycnnError(f"model module {source.module} does not import ({_first_line(exc)})") from None
    factory = getattr(module, source.name, None)
    if factory is None:
        import torch

        defined = sorted(n for n, v in vars(module).items()
                         if not n.startswith("_") and (inspect.isfunction(v) or (inspect.isclass(v) and issubclass(v, torch.nn.Module)))
                         and getattr(v, "__module__", None) == module.__name__)
        hint = f"; it defines {', '.join(defined)}" if defined else ""
        raise TinycnnError(f"{source.where} has no {source.name!r}{hint}")
    if not callable(factory):
        raise TinycnnError(f"{source.where}:{source.name} is a {type(factory).__name__}, not an nn.Module class or a function returning one")
    return factory


def takes_dropout(factory: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return "dropout" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def build(source: ModelSource, dropout: float | None = None, model_args: dict | None = None):
    """A fresh network from `source`: called with `model_args` (none by default), and with
    dropout= where the factory takes it and a rate is given; its output checked to be (N, C)
    logits."""
    import torch

    factory = load_factory(source)
    kwargs = {"dropout": dropout} if dropout is not None and takes_dropout(factory) else {}
    kwargs.update(model_args or {})
    try:
        model = factory(**kwargs)
    except Exception as exc:
        raise TinycnnError(f"{source.where}:{source.name}({', '.join(f'{k}={v}' for k, v in kwargs.items())}) failed ({_first_line(exc)})") from None
    if not isinstance(model, torch.nn.Module):
        raise TinycnnError(f"{source.where}:{source.name} returned {type(model).__name__}, not an nn.Module")
    check_output(model, f"{source.where}:{source.name}")
    return model


def check_output(model, label: str, input_size: tuple[int, ...] = (1, 28, 28)) -> int:
    """Run a batch of two blank images through `model` in eval mode; the number of logits C of
    its (N, C) output, or one line saying what came out instead."""
    import torch

    was_training = model.training
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    try:
        with torch.no_grad():
            out = model.eval()(torch.zeros(2, *input_size, device=device))
    except Exception as exc:
        raise TinycnnError(f"{label}: a batch of two {'x'.join(map(str, input_size))} images does not go through it ({_first_line(exc)})") from None
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != 2 or out.shape[1] < 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise TinycnnError(f"{label}: its output for a batch of 2 images is {shape}; it must be (N, C) logits, one row per image")
    return int(out.shape[1])


def reinitialising(instance):
    """A factory of fresh copies of `instance`, each re-initialised (after the caller seeds
    torch) by its layers' own reset_parameters(): several seeds of a network given as an
    instance. One line names a layer with parameters but no reset_parameters()."""
    import copy

    for name, module in instance.named_modules():
        if any(True for _ in module.parameters(recurse=False)) and not hasattr(module, "reset_parameters"):
            raise TinycnnError(f"cannot re-initialise {type(instance).__name__} for another seed: its layer "
                               f"{name or '(the network itself)'} ({type(module).__name__}) has parameters but no "
                               "reset_parameters(); give the class, or a function that builds the network, instead of an instance")

    def fresh():
        model = copy.deepcopy(instance)
        for module in model.modules():
            if any(True for _ in module.parameters(recurse=False)):
                module.reset_parameters()
        return model

    fresh.__name__ = type(instance).__name__
    return fresh

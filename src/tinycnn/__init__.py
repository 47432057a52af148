"""tinycnn: design, train and check compact CNNs on MNIST under parameter and epoch budgets.

    pip install -e ".[dev]"
    tinycnn train        # the default recipe, data fetched and verified on first use
    tinycnn --help       # every subcommand

From Python (tinycnn/api.py):

    import tinycnn
    tinycnn.summary(Net())                          # layer table, receptive field, MACs
    run = tinycnn.train(Net, "default", epochs=15)  # any nn.Module class, factory or instance
    run.check(); run.plot(); run.report()
    tinycnn.create_model("era-s7-6750"); tinycnn.list_models("era-s7*")
"""

__version__ = "0.1.0"

# The API loads on first use, so that `tinycnn --help` and reading runs never load torch.
_API = {
    "create_model": "tinycnn.api", "summary": "tinycnn.api", "train": "tinycnn.api", "resume": "tinycnn.api",
    "load_run": "tinycnn.api", "Run": "tinycnn.api", "SeedsRun": "tinycnn.api",
    "list_models": "tinycnn.models.registry", "register_model": "tinycnn.models.registry",
    "search": "tinycnn.nas.run", "confirm": "tinycnn.nas.run",
    "TinycnnError": "tinycnn.errors",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        import importlib

        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tinycnn' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_API])

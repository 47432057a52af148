"""tinycnn: design, train and check compact CNNs on MNIST under parameter and epoch budgets.

    pip install -e ".[dev]"
    tinycnn train        # the default recipe, data fetched and verified on first use
    tinycnn --help       # every subcommand
"""

__version__ = "0.1.0"

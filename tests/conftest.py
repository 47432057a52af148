"""Shared fixtures. Real MNIST comes from the user's cache (fetched once per machine)."""

import pytest


@pytest.fixture(scope="session")
def mnist_splits():
    """The real MNIST splits as CPU tensors (fetched and verified on first use)."""
    from tinycnn.data.loader import load_splits

    return load_splits("mnist")

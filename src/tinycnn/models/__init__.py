"""The model zoo: seed architectures (era.py) and our own compact designs (tiny.py).

    from tinycnn.models import create_model, list_models, model_info
    model = create_model("era-s7-6750")

Importing this package registers every model.
"""

from tinycnn.models import era, family, tiny  # noqa: F401  (registers the models)
from tinycnn.models.registry import (
    ModelInfo,
    create_model,
    list_models,
    model_info,
    register_model,
)

__all__ = ["ModelInfo", "create_model", "list_models", "model_info", "register_model"]

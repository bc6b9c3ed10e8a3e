"""Segmentation networks of the reproduced studies, built by name.

``build_model(name, in_channels, classes, **params)`` returns an ``nn.Module`` mapping
``[B, in_channels, *spatial]`` to logits ``[B, classes, *spatial]`` at the input
resolution. Names, parameters, parameter counts and "tiny" CI configurations are listed
in ``docs/models.md``. No pretrained weights are downloaded by default.
"""

from segbench.models import monai_models, smp_models, transunet, unet  # noqa: F401  (register)
from segbench.models.registry import (
    MODEL_INFO,
    MODELS,
    ModelInfo,
    build_model,
    check_input_size,
    input_divisor,
    list_models,
)

__all__ = [
    "MODELS",
    "MODEL_INFO",
    "ModelInfo",
    "build_model",
    "check_input_size",
    "input_divisor",
    "list_models",
]

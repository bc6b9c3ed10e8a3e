"""The model registry ``MODELS``, its per-model metadata, and the factory ``build_model``.

Every model is registered under an explicit name (the config id) the same way as every loss,
``@MODELS.register("unet", divisor=..., tiny=..., reference=...)``; the keywords become the
model's :class:`ModelInfo` (in :data:`MODEL_INFO`), what the factory needs without building
the network: the number of spatial dimensions, the divisor every spatial input size must be a
multiple of, a cheap "tiny" parameter set for CI runs and the reference the architecture
follows. The parameters come from the constructor's signature, less ``in_channels`` and
``classes``.

The submodules that register models are imported by ``segbench.models.__init__``;
users never import them themselves (no registration by import side effect).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from segbench.models.checks import check_int
from segbench.registry import Registry

#: Keyword arguments handled by :func:`build_model` itself, not by the constructors.
FACTORY_PARAMS = ("pretrained",)


@dataclass(frozen=True)
class ModelInfo:
    """What the factory knows about a registered model without building it.

    Attributes:
        name: registry name (config id).
        spatial_dims: 2 for images ``[B, C, H, W]``, 3 for volumes ``[B, C, D, H, W]``.
        divisor: function of the resolved constructor parameters returning the integer
            every spatial input size must be a multiple of.
        tiny: parameters of a small configuration for CI workflow runs.
        reference: the paper / library the architecture follows.
    """

    name: str
    divisor: Callable[..., int]
    spatial_dims: int = 2
    tiny: Mapping[str, Any] = field(default_factory=dict)
    reference: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "tiny", dict(self.tiny))  # a private copy


MODELS: Registry[nn.Module] = Registry("model", fixed=("in_channels", "classes"), info=ModelInfo)
"""Model name -> constructor ``(in_channels, classes, **params) -> nn.Module``."""

MODEL_INFO: dict[str, ModelInfo] = MODELS.infos
"""Model name -> :class:`ModelInfo`, filled by ``MODELS.register``."""


def register_variant(
    name: str, ctor: Callable[..., nn.Module], doc: str, **meta: Any
) -> Callable[..., nn.Module]:
    """Register ``ctor``, one form of a network made by a factory (its 2D or its 3D form, one
    signature written once for both), under ``name``.

    ``ctor`` gets ``doc`` as its docstring and ``name`` as its ``__name__``, so the name is
    written once; ``meta`` are the :class:`ModelInfo` fields, as for ``MODELS.register``.

    Returns:
        ``ctor``, registered.
    """
    ctor.__doc__ = doc
    ctor.__name__ = ctor.__qualname__ = name
    return MODELS.register(name, ctor, **meta)


def list_models() -> list[str]:
    """Sorted names of all registered models."""
    return MODELS.names()


def _bind(name: str, in_channels: int, classes: int, params: Mapping[str, Any]) -> dict[str, Any]:
    """Resolve the constructor's parameters (defaults filled in); unknown keys raise."""
    return MODELS.bind(name, params, FACTORY_PARAMS, in_channels=in_channels, classes=classes)


def input_divisor(name: str, **params: Any) -> int:
    """The integer every spatial input size of model ``name`` must be a multiple of.

    Raises:
        ValueError: unknown model name or parameter.
    """
    params = {k: v for k, v in params.items() if k not in FACTORY_PARAMS}
    in_channels = params.pop("in_channels", 1)
    classes = params.pop("classes", 2)
    resolved = _bind(name, in_channels, classes, params)
    return int(MODEL_INFO[name].divisor(**resolved))


def _size_error(name: str, size: Sequence[int], divisor: int) -> str:
    ok = [max(divisor, round(s / divisor) * divisor) for s in size]
    return (
        f"model {name!r} cannot take spatial input size {tuple(size)}: every spatial size "
        f"must be a multiple of {divisor} (e.g. {tuple(ok)}); pad or crop the input"
    )


def check_input_size(name: str, size: int | Sequence[int], **params: Any) -> None:
    """Raise a clear error if model ``name`` (with ``params``) cannot take ``size``.

    Args:
        name: registered model name.
        size: spatial size, an int (same for every spatial dim) or a sequence
            ``(H, W)`` / ``(D, H, W)``.
        **params: the model's constructor parameters (they may change the divisor,
            e.g. ``depth`` of ``unet``); ``in_channels``/``classes`` are accepted and ignored.

    Raises:
        ValueError: naming the model, the size and the divisor it needs; also for an
            unknown model name or parameter, or a size of the wrong dimensionality.
    """
    info = MODEL_INFO.get(name)
    if info is None:
        MODELS.get(name)  # raises the registry's unknown-name error
        raise AssertionError("unreachable")  # pragma: no cover
    dims = info.spatial_dims
    sizes = [size] * dims if isinstance(size, int) else list(size)
    if len(sizes) != dims or any(isinstance(s, bool) or not isinstance(s, int) for s in sizes):
        raise ValueError(
            f"model {name!r} is {dims}D: size must be an int or {dims} ints, got {size!r}"
        )
    divisor = input_divisor(name, **params)
    if any(s < 1 or s % divisor for s in sizes):
        raise ValueError(_size_error(name, sizes, divisor))


def _load_state_dict(model: nn.Module, path: str | os.PathLike[str], name: str) -> None:
    """Load a local state_dict (plain, or under a ``"state_dict"``/``"model"`` key)."""
    if not os.path.isfile(path):
        raise ValueError(f"pretrained must be a path to a local state_dict file, got {path!r}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            if key in state and isinstance(state[key], dict):
                state = state[key]
                break
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(f"pretrained {str(path)!r} does not fit model {name!r}: {err}") from None


def build_model(name: str, in_channels: int, classes: int, **params: Any) -> nn.Module:
    """Build the registered model ``name``.

    Args:
        name: registered model name (see :func:`list_models`).
        in_channels: number of input channels.
        classes: number of output channels (logits, one per class).
        **params: the model's own parameters (see ``docs/models.md``) plus
            ``pretrained: str | None`` (default None): path to a local state_dict
            (``torch.save(model.state_dict())``) loaded with ``strict=True`` after
            construction. Nothing is ever downloaded unless a parameter such as
            ``encoder_weights`` explicitly asks for it.

    Returns:
        an ``nn.Module`` mapping ``[B, in_channels, *spatial]`` to logits
        ``[B, classes, *spatial]`` at the input resolution. A forward pre-hook checks the
        spatial size and raises ``ValueError`` (see :func:`check_input_size`). The module
        carries ``segbench_name``, ``input_divisor`` and ``spatial_dims`` attributes.

    Raises:
        ValueError: unknown name (lists the known names and the closest match), unknown
            parameter, bad ``in_channels``/``classes`` or other bad parameter values.
    """
    check_int("in_channels", in_channels)
    check_int("classes", classes)
    pretrained = params.pop("pretrained", None)
    resolved = _bind(name, in_channels, classes, params)
    info = MODEL_INFO[name]
    divisor = int(info.divisor(**resolved))
    model = MODELS.get(name)(**resolved)
    if pretrained is not None:
        _load_state_dict(model, pretrained, name)
    model.segbench_name = name
    model.input_divisor = divisor
    model.spatial_dims = info.spatial_dims
    model.register_forward_pre_hook(_SizeCheck(name, divisor, info.spatial_dims, in_channels))
    return model


class _SizeCheck:
    """Forward pre-hook: raise ``ValueError`` for an input the model cannot take."""

    def __init__(self, name: str, divisor: int, spatial_dims: int, in_channels: int) -> None:
        self.name = name
        self.divisor = divisor
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels

    def __call__(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        if not args or not isinstance(args[0], torch.Tensor):
            return
        x = args[0]
        if x.ndim != self.spatial_dims + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"model {self.name!r} expects input [B, {self.in_channels}, "
                f"{', '.join('HW' if self.spatial_dims == 2 else 'DHW')}], "
                f"got shape {tuple(x.shape)}"
            )
        spatial = tuple(int(s) for s in x.shape[2:])
        if any(s % self.divisor for s in spatial):
            raise ValueError(_size_error(self.name, spatial, self.divisor))

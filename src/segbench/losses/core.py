"""Shared machinery of the loss modules: the registry ``LOSSES`` and the checked factory
``build_loss``, the :class:`SegLoss` base class, input checks, parameter validation.

Every loss is an :class:`SegLoss` subclass registered with ``@LOSSES.register("name")``, which
sets its ``name``; the parameters it accepts are those of its constructor's signature (also what
``repr`` shows, recorded by :class:`SegLoss` at construction). Options shared by a family (the
``smooth`` / ``batch`` / ``include_background`` of every overlap loss) are declared once, as
keyword-only parameters of the family's base constructor; a subclass constructor ending in
``**options`` forwards them, and its signature (:func:`constructor_signature`) lists them in place
of ``**options``, so the registry, ``repr`` and docs/losses.md still see every parameter. It holds configuration only; the math lives in
:mod:`segbench.losses.functional`. ``forward(logits, target)`` validates shapes once and calls
``compute(logits, target)`` with float32 (or float64) logits and int64 targets.

Each class carries a ``spec`` dict (formula, paper + equation, batch reduction, background
handling, smoothing); :mod:`segbench.losses.spec` renders the table of docs/losses.md from it and
from the constructor's signature, so the documentation cannot drift from the code.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from segbench.registry import Registry

from .functional import to_float

LOSSES: Registry[nn.Module] = Registry("loss")
"""Loss name (config id) -> loss class; ``@LOSSES.register(name)`` sets the class's ``name``."""


def build_loss(name: str, **params: Any) -> nn.Module:
    """Construct the loss registered as ``name`` with keyword ``params``.

    Raises:
        ValueError: unknown name (lists the known names and the closest match), a parameter the
            loss does not take (names it, its value and the loss's parameters), or a parameter
            value it does not allow.
    """
    return LOSSES.get(name)(**LOSSES.bind(name, params))


def list_losses() -> list[str]:
    """Sorted names of all registered losses."""
    return LOSSES.names()


class _ClassSignature:
    """``cls.__signature__`` of a loss class: its :func:`constructor_signature`.

    Read by :func:`inspect.signature` (hence by the registry). Defined for the class only: on an
    instance the attribute is absent, so inspecting a loss object still describes its call.
    """

    def __get__(self, obj: object, owner: type) -> inspect.Signature:
        if obj is not None:
            raise AttributeError("__signature__")
        return owner._signature  # type: ignore[attr-defined, no-any-return]


class SegLoss(nn.Module):
    """Base class: ``forward(logits [B, C, *spatial], target [B, *spatial]) -> scalar``.

    The constructor's arguments (defaults filled in) are recorded in ``_params`` for ``repr``:
    every subclass's ``__init__`` is wrapped once, at class creation, by :meth:`__init_subclass__`.

    Raises:
        ValueError: logits with fewer than 3 dimensions, a target whose shape is not
            ``logits.shape`` without the class axis, or a non-integer target.
    """

    spec: ClassVar[dict[str, str]] = {}
    name: ClassVar[str] = ""  # set by LOSSES.register
    min_classes: ClassVar[int] = 1
    max_classes: ClassVar[int | None] = None
    _signature: ClassVar[inspect.Signature] = inspect.Signature()
    __signature__ = _ClassSignature()  # what inspect.signature(cls) returns

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            init = cls.__dict__["__init__"]
            cls._signature = constructor_signature(init, inspect.signature(cls.__mro__[1]))
            cls.__init__ = _recording(init, cls._signature)  # type: ignore[method-assign]

    def __init__(self) -> None:  # no parameters (not nn.Module's ``*args, **kwargs``)
        super().__init__()

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        check_inputs(logits, target, self.name, self.min_classes, self.max_classes)
        return self.compute(to_float(logits), target.long())

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def extra_repr(self) -> str:
        params = getattr(self, "_params", {})
        return ", ".join(f"{k}={v!r}" for k, v in params.items())


def constructor_signature(init: Callable[..., None], base: inspect.Signature) -> inspect.Signature:
    """The user parameters of the constructor ``init`` (without ``self``).

    A trailing ``**options`` stands for the keyword-only parameters of the base class's
    constructor signature ``base`` (those ``init`` does not name itself): they are listed after
    ``init``'s positional-or-keyword parameters and before its own keyword-only ones, so the
    family options are declared once and every member's signature still shows them.
    """
    own = list(inspect.signature(init).parameters.values())[1:]
    if not own or own[-1].kind is not inspect.Parameter.VAR_KEYWORD:
        return inspect.Signature(own)
    kw_only = inspect.Parameter.KEYWORD_ONLY
    named = {p.name for p in own}
    inherited = [p for p in base.parameters.values() if p.kind is kw_only and p.name not in named]
    positional = [p for p in own[:-1] if p.kind is not kw_only]
    keywords = [p for p in own[:-1] if p.kind is kw_only]
    return inspect.Signature(positional + inherited + keywords)


def _recording(init: Callable[..., None], sig: inspect.Signature) -> Callable[..., None]:
    """Wrap ``init`` so the outermost constructor call records its arguments bound to ``sig``."""

    @functools.wraps(init)
    def wrapper(self: SegLoss, *args: Any, **kwargs: Any) -> None:
        if "_params" not in self.__dict__:  # outermost call
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            self.__dict__["_params"] = dict(bound.arguments)
        init(self, *args, **kwargs)

    return wrapper


def check_inputs(
    logits: torch.Tensor,
    target: torch.Tensor,
    name: str = "",
    min_classes: int = 1,
    max_classes: int | None = None,
) -> None:
    """Validate the ``(logits, target)`` contract of every loss (see docs/CONVENTIONS.md)."""
    who = f"loss {name!r}: " if name else ""
    if not torch.is_floating_point(logits):
        raise ValueError(f"{who}logits must be a float tensor, got dtype {logits.dtype}")
    if logits.ndim < 3:
        raise ValueError(
            f"{who}logits must be [B, C, *spatial] (2D or 3D), got shape {tuple(logits.shape)}"
        )
    if torch.is_floating_point(target) or target.dtype == torch.bool:
        raise ValueError(f"{who}target must hold int64 class indices, got dtype {target.dtype}")
    expected = (logits.shape[0], *logits.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(
            f"{who}target shape {tuple(target.shape)} does not match logits "
            f"{tuple(logits.shape)}; expected {expected}"
        )
    c = logits.shape[1]
    if c < min_classes or (max_classes is not None and c > max_classes):
        allowed = f"{min_classes}" if max_classes == min_classes else f">= {min_classes}"
        if max_classes is not None and max_classes != min_classes:
            allowed = f"{min_classes}..{max_classes}"
        raise ValueError(f"{who}number of classes C={c} is not supported; allowed C: {allowed}")


# --------------------------------------------------------------------------- parameter checks


def check_number(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as float after checking it is a finite real number in the given range.

    Raises:
        ValueError: naming the parameter, the value and the allowed range.
    """
    lo = "(-inf" if low is None else ("(" if low_open else "[") + f"{low:g}"
    hi = "inf)" if high is None else f"{high:g}" + (")" if high_open else "]")
    allowed = f"a real number in {lo}, {hi}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"parameter {name}={value!r} is not allowed; expected {allowed}")
    v = float(value)
    ok = math.isfinite(v)
    if ok and low is not None:
        ok = v > low if low_open else v >= low
    if ok and high is not None:
        ok = v < high if high_open else v <= high
    if not ok:
        raise ValueError(f"parameter {name}={value!r} is not allowed; expected {allowed}")
    return v


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` after checking it is an int in ``[low, high]``.

    Raises:
        ValueError: naming the parameter, the value and the allowed range.
    """
    lo = "-inf" if low is None else str(low)
    hi = "inf" if high is None else str(high)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or (low is not None and value < low)
        or (high is not None and value > high)
    ):
        raise ValueError(
            f"parameter {name}={value!r} is not allowed; expected an integer in [{lo}, {hi}]"
        )
    return int(value)


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``.

    Raises:
        ValueError: naming the parameter, the value and the allowed values.
    """
    if value not in choices:
        raise ValueError(
            f"parameter {name}={value!r} is not allowed; allowed values: "
            + ", ".join(repr(c) for c in choices)
        )
    return value


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` if it is a bool.

    Raises:
        ValueError: naming the parameter and the value.
    """
    if not isinstance(value, bool):
        raise ValueError(f"parameter {name}={value!r} is not allowed; allowed values: True, False")
    return value


def check_vector(
    name: str, value: Any, low: float | None = None, low_open: bool = False
) -> tuple[float, ...]:
    """Return a non-empty list of numbers as a tuple of floats, each checked like ``check_number``.

    Raises:
        ValueError: naming the parameter, the value and what is allowed.
    """
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) == 0:
        raise ValueError(
            f"parameter {name}={value!r} is not allowed; expected a non-empty list of numbers"
        )
    return tuple(
        check_number(f"{name}[{i}]", v, low=low, low_open=low_open) for i, v in enumerate(value)
    )

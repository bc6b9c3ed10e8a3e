"""The loss registry ``LOSSES`` (names are the config ids) and the checked factory."""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from segbench.registry import Registry

LOSSES: Registry[nn.Module] = Registry("loss")


def build_loss(name: str, **params: Any) -> nn.Module:
    """Construct the loss registered as ``name`` with keyword ``params``.

    Raises:
        ValueError: unknown name (lists the known names and the closest match), a parameter the
            loss does not take (lists its parameters), or a parameter value it does not allow.
    """
    ctor = LOSSES.get(name)
    allowed = list(inspect.signature(ctor).parameters)
    for key in params:
        if key not in allowed:
            raise ValueError(
                f"loss {name!r} has no parameter {key!r} (value {params[key]!r}); "
                f"allowed parameters: {', '.join(allowed) if allowed else '(none)'}"
            )
    return ctor(**params)


def list_losses() -> list[str]:
    """Sorted names of all registered losses."""
    return LOSSES.names()

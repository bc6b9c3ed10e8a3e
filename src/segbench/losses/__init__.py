"""The loss library of the four studies: ``build_loss(name, **params)``, ``LOSSES``, ``list_losses()``.

Every submodule is imported here, so every loss is registered as soon as ``segbench.losses`` is
imported (no registration by a side effect users must remember). See docs/losses.md for the
table of formulas, papers, reductions and defaults (generated from the classes' ``spec``).
"""

from __future__ import annotations

from . import (  # noqa: F401  (registration)
    balance,
    ce,
    compound,
    functional,
    multiplicative,
    region,
    region_size,
    surgery,
)
from .core import LOSSES, build_loss, list_losses

__all__ = ["LOSSES", "build_loss", "list_losses", "functional"]

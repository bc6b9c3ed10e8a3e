"""Explicit name -> constructor registries (timm-style, without import side effects).

A :class:`Registry` maps a string name (the id used in configs) to a constructor.
Registering a duplicate name raises; looking up an unknown name raises a
``ValueError`` that lists the known names and suggests the closest match.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """A named mapping from ids to constructors.

    Args:
        kind: what the registry holds ("loss", "model", ...), used in error messages.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, Callable[..., T]] = {}

    def register(self, name: str, ctor: Callable[..., T] | None = None) -> Any:
        """Register ``ctor`` under ``name``; usable as a decorator when ``ctor`` is None.

        Raises:
            ValueError: if ``name`` is already registered.
        """

        def _add(fn: Callable[..., T]) -> Callable[..., T]:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = fn
            return fn

        return _add if ctor is None else _add(ctor)

    def get(self, name: str) -> Callable[..., T]:
        """Return the constructor for ``name``.

        Raises:
            ValueError: unknown name; the message lists the known names and the closest match.
        """
        try:
            return self._items[name]
        except KeyError:
            raise ValueError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        known = sorted(self._items)
        close = difflib.get_close_matches(str(name), known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return f"unknown {self.kind} {name!r}; known {self.kind} names: {', '.join(known)}.{hint}"

    def build(self, name: str, /, **params: Any) -> T:
        """Construct ``name`` with keyword ``params``."""
        return self.get(name)(**params)

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)

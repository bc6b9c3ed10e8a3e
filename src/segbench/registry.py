"""Explicit name -> constructor registries, one style for every kind (losses, models, generators).

A :class:`Registry` maps a string name (the id used in configs) to a constructor (a class or a
function). Every kind registers the same way::

    LOSSES = Registry("loss")

    @LOSSES.register("dice")
    class DiceLoss(SegLoss): ...

Registration records the name on the registered object (``DiceLoss.name == "dice"``) and,
where the registry was made with an ``info`` type, builds that per-name record from the keyword
arguments of :meth:`Registry.register` (``Registry("model", info=ModelInfo)``). The parameters a
name accepts are those of the constructor's signature (:func:`inspect.signature`), less the
``fixed`` ones the factory passes itself (a model's ``in_channels`` and ``classes``), so no list
of parameters is ever written twice. :meth:`Registry.bind` resolves a parameter mapping against
that signature and raises a ``ValueError`` naming the unknown (or missing) parameter, its value
and the allowed ones.

Registering a duplicate name raises; looking up an unknown name raises a ``ValueError`` that lists
the known names and suggests the closest match.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """A named mapping from ids to constructors.

    Args:
        kind: what the registry holds ("loss", "model", ...), used in error messages.
        fixed: constructor parameters the factory supplies itself (not user parameters).
        info: optional record type built at registration as ``info(name=name, **meta)``
            from the keyword arguments of :meth:`register`; kept in :attr:`infos`.
    """

    def __init__(
        self, kind: str, fixed: Sequence[str] = (), info: Callable[..., Any] | None = None
    ) -> None:
        self.kind = kind
        self.fixed = tuple(fixed)
        self._info_type = info
        self._items: dict[str, Callable[..., T]] = {}
        #: name -> the ``info`` record given at registration (empty without ``info``).
        self.infos: dict[str, Any] = {}

    def register(self, name: str, ctor: Callable[..., T] | None = None, **meta: Any) -> Any:
        """Register ``ctor`` under ``name``; a decorator when ``ctor`` is None.

        Sets ``ctor.name = name`` and, with an ``info`` type, records ``info(name=name, **meta)``.

        Raises:
            ValueError: ``name`` already registered; metadata given to a registry without
                an ``info`` type.
        """
        if meta and self._info_type is None:
            raise ValueError(f"{self.kind} registry takes no metadata, got {sorted(meta)}")

        def _add(fn: Callable[..., T]) -> Callable[..., T]:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            if self._info_type is not None:
                self.infos[name] = self._info_type(name=name, **meta)
            fn.name = name  # type: ignore[attr-defined]
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

    def signature(self, name: str) -> list[inspect.Parameter]:
        """The user parameters of ``name``: its constructor's, less the ``fixed`` ones."""
        sig = inspect.signature(self.get(name))
        variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        return [
            p
            for p in sig.parameters.values()
            if p.name not in self.fixed and p.kind not in variadic
        ]

    def params(self, name: str) -> list[str]:
        """Names of the user parameters of ``name``, in signature order."""
        return [p.name for p in self.signature(name)]

    def defaults(self, name: str) -> dict[str, Any]:
        """``{parameter: default}`` for the parameters of ``name`` that have a default."""
        return {p.name: p.default for p in self.signature(name) if p.default is not p.empty}

    def bind(
        self, name: str, params: Mapping[str, Any], extra: Sequence[str] = (), **fixed: Any
    ) -> dict[str, Any]:
        """Resolve ``params`` (plus the ``fixed`` values) against the constructor of ``name``.

        Args:
            name: registered name.
            params: user parameters.
            extra: names the caller handles itself, listed as allowed in the error message.
            **fixed: values of the registry's ``fixed`` parameters.

        Returns:
            every constructor argument by name, defaults filled in.

        Raises:
            ValueError: unknown name; a parameter the constructor does not take (naming it, its
                value and the allowed parameters); a required parameter not given.
        """
        allowed = self.params(name)
        unknown = [k for k in params if k not in allowed]
        if unknown:
            listed = allowed + list(extra)
            raise ValueError(
                f"{self.kind} {name!r} got unknown parameter(s) "
                + ", ".join(f"{k!r} (value {params[k]!r})" for k in unknown)
                + f"; allowed: {', '.join(listed) if listed else '(none)'}"
            )
        sig = inspect.signature(self.get(name))
        try:
            bound = sig.bind(**fixed, **params)
        except TypeError as err:
            raise ValueError(
                f"{self.kind} {name!r}: {err}; parameters: {', '.join(allowed) or '(none)'}"
            ) from None
        bound.apply_defaults()
        return dict(bound.arguments)

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)

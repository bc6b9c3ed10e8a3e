"""Argument checks shared by the model constructors: one wording per kind of bad value.

Every check raises a ``ValueError`` naming the parameter, what it must be and the value given
(docs/CONVENTIONS.md: bad input gives one clear error), and returns the value in the form the
network takes (``int``, ``float``, ``tuple``). Booleans are never accepted as numbers
(``True`` is an ``int`` to Python, never a channel count or a rate to a model).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def is_int(value: Any, lo: int = 1, hi: int | None = None) -> bool:
    """True for an ``int`` (not a ``bool``) in ``[lo, hi]`` (``hi=None``: no upper bound)."""
    return (
        not isinstance(value, bool)
        and isinstance(value, int)
        and value >= lo
        and (hi is None or value <= hi)
    )


def _int_words(lo: int, hi: int | None) -> str:
    if hi is not None:
        return f"an integer in [{lo}, {hi}]"
    return {0: "a non-negative integer", 1: "a positive integer"}.get(lo, f"an integer >= {lo}")


def check_int(pname: str, value: Any, lo: int = 1, hi: int | None = None) -> int:
    """``value`` as an ``int`` in ``[lo, hi]`` (default: a positive integer).

    Raises:
        ValueError: ``"<pname> must be a positive integer, got <value>"`` (or ``a non-negative
            integer`` for ``lo=0``, ``an integer in [lo, hi]`` with ``hi``).
    """
    if not is_int(value, lo, hi):
        raise ValueError(f"{pname} must be {_int_words(lo, hi)}, got {value!r}")
    return int(value)


def is_ints(value: Any, length: int | None = None, min_len: int = 1) -> bool:
    """True for a sequence of positive integers: exactly ``length`` of them, or at least
    ``min_len`` when ``length`` is None."""
    return (
        isinstance(value, Sequence)
        and (len(value) == length if length is not None else len(value) >= min_len)
        and all(is_int(v) for v in value)
    )


def check_ints(
    pname: str, value: Any, length: int | None = None, min_len: int = 1, note: str = ""
) -> tuple[int, ...]:
    """``value`` as a tuple of positive integers (see :func:`is_ints`).

    Raises:
        ValueError: ``"<pname> must be <length> positive integers<note>, got <value>"``
            (``a sequence of at least <min_len>`` without ``length``).
    """
    if not is_ints(value, length, min_len):
        count = str(length) if length is not None else f"a sequence of at least {min_len}"
        raise ValueError(f"{pname} must be {count} positive integers{note}, got {value!r}")
    return tuple(value)


def check_rate(pname: str, value: Any) -> float:
    """``value`` as a ``float`` in ``[0, 1)`` (a dropout or drop-path probability).

    Raises:
        ValueError: ``"<pname> must be a number in [0, 1), got <value>"``.
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise ValueError(f"{pname} must be a number in [0, 1), got {value!r}")
    return float(value)


def check_choice(pname: str, value: Any, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``.

    Raises:
        ValueError: ``"<pname> must be one of <choices>; got <value>"``.
    """
    if value not in choices:
        raise ValueError(f"{pname} must be one of {', '.join(choices)}; got {value!r}")
    return value

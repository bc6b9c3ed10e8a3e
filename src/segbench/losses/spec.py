"""Render the loss specification table of docs/losses.md from the registry.

Each registered class carries a ``spec`` dict (formula, paper + equation, reduction, background,
smoothing, notes); parameters and defaults are read from the constructor signature, so the table
cannot drift from the code. ``scripts/gen_loss_spec.py`` rewrites the part of docs/losses.md
between :data:`BEGIN` and :data:`END`; a test asserts the file holds exactly this text.
"""

from __future__ import annotations

import inspect

from .core import LOSSES

BEGIN = "<!-- BEGIN GENERATED LOSS TABLE (python scripts/gen_loss_spec.py) -->"
END = "<!-- END GENERATED LOSS TABLE -->"

COLUMNS = (
    "name",
    "formula",
    "paper / equation",
    "batch reduction",
    "background",
    "smoothing",
    "parameters (defaults)",
    "notes",
)


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def params_of(name: str) -> str:
    """``p=default`` for every constructor parameter of the loss ``name`` (empty: "none")."""
    sig = inspect.signature(LOSSES.get(name))
    parts = [f"{p.name}={p.default!r}" for p in sig.parameters.values()]
    return ", ".join(parts) if parts else "none"


def render_table() -> str:
    """The markdown table, one row per registered loss, sorted by name."""
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for name in LOSSES.names():
        spec = LOSSES.get(name).spec  # type: ignore[attr-defined]
        row = [
            f"`{name}`",
            f"`{spec['formula']}`",
            spec["paper"],
            spec["reduction"],
            spec["background"],
            spec["smoothing"],
            f"`{params_of(name)}`",
            spec.get("notes", ""),
        ]
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return "\n".join(lines) + "\n"


def render_block() -> str:
    """The generated block including its markers."""
    return f"{BEGIN}\n{render_table()}{END}"


def replace_block(document: str) -> str:
    """``document`` with the text between the markers replaced by :func:`render_block`.

    Raises:
        ValueError: the markers are missing or out of order.
    """
    start = document.find(BEGIN)
    end = document.find(END)
    if start < 0 or end < start:
        raise ValueError(f"docs must contain {BEGIN!r} followed by {END!r}")
    return document[:start] + render_block() + document[end + len(END) :]


def extract_block(document: str) -> str:
    """The block between (and including) the markers of ``document``."""
    start = document.find(BEGIN)
    end = document.find(END)
    if start < 0 or end < start:
        raise ValueError(f"docs must contain {BEGIN!r} followed by {END!r}")
    return document[start : end + len(END)]

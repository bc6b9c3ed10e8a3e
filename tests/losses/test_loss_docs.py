"""docs/losses.md holds exactly the table generated from the registry, and every loss has a spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from segbench.losses import LOSSES, list_losses
from segbench.losses.spec import extract_block, render_block, replace_block

DOCS = Path(__file__).resolve().parents[2] / "docs" / "losses.md"
REQUIRED = ("formula", "paper", "reduction", "background", "smoothing")


def test_docs_table_is_generated_text() -> None:
    text = DOCS.read_text(encoding="utf-8")
    assert extract_block(text) == render_block(), "run: python scripts/gen_loss_spec.py"
    assert replace_block(text) == text


@pytest.mark.parametrize("name", list_losses())
def test_every_loss_has_a_complete_spec_and_docstring(name: str) -> None:
    cls = LOSSES.get(name)
    for key in REQUIRED:
        assert cls.spec.get(key), f"{name}: spec[{key!r}] missing"
    assert cls.name == name
    assert cls.__doc__ and len(cls.__doc__) > 40
    assert f"`{name}`" in render_block()


def test_replace_block_needs_markers() -> None:
    with pytest.raises(ValueError, match="must contain"):
        replace_block("no markers here")

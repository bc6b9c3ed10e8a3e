"""Figure files that are byte-identical across runs and processes.

Matplotlib stamps files with run-dependent metadata: the creation date (SVG ``dc:date``, PDF
``/CreationDate``), and SVG element ids salted with a random UUID unless ``svg.hashsalt`` is
set. :func:`figure_bytes` removes the dates and version stamps (``metadata`` with ``None``
values) and fixes the salt, so two identical runs of a reporting rule write identical files
(issue 17: "make figures deterministic"). Every figure writer of the package saves through it
(:func:`segbench.reporting.figures.save_figure`, :func:`segbench.stats.plot_cd_diagram`).
"""

from __future__ import annotations

import io
from typing import Any

SVG_HASHSALT = "segbench"
"""Fixed ``svg.hashsalt`` (matplotlib otherwise salts SVG ids with ``uuid4()``)."""

METADATA: dict[str, dict[str, None]] = {
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "ModDate": None, "Creator": None, "Producer": None},
}
"""Metadata keys removed per format (``None`` removes a key matplotlib would write)."""


def figure_bytes(fig: Any, fmt: str, **savefig_kwargs: Any) -> bytes:
    """``fig.savefig`` into memory with fixed metadata; return the file's bytes.

    Args:
        fig: a matplotlib ``Figure``.
        fmt: ``png``, ``svg``, ``pdf`` (others are saved as matplotlib does by default).
        **savefig_kwargs: passed on (``dpi``, ``bbox_inches``, ...).
    """
    import matplotlib

    fmt = (fmt or "png").lower()
    buf = io.BytesIO()
    kwargs = dict(savefig_kwargs)
    if fmt in METADATA:
        kwargs["metadata"] = {**METADATA[fmt], **(kwargs.get("metadata") or {})}
    with matplotlib.rc_context({"svg.hashsalt": SVG_HASHSALT}):
        fig.savefig(buf, format=fmt, **kwargs)
    return buf.getvalue()

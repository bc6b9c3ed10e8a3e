"""Loss and gradient curves against the predicted probability, computed from the loss
implementations themselves (``segbench.losses.build_loss`` + autograd on constructed logits;
no training, no data), redrawing paper 000 Fig. 1, 2, 5 and paper 002 Fig. 1, 6.

Every curve evaluates the real loss module on a small binary "image" ``[1, 2, 1, N]`` in float64
(classes: 0 = background, 1 = foreground) and differentiates it with ``torch.autograd``, so the
surgery losses' custom backward (paper 002) and CAML's differentiated ``p_bar`` (paper 000
erratum) are what is drawn. Two scenes:

* **uniform scene** (:func:`uniform_curves`): ``N = 100`` pixels, 10 foreground; every pixel
  gives its true class probability ``p`` (logits ``log [1 - p, p]`` for foreground pixels,
  ``log [p, 1 - p]`` for background). ``value = L(p)`` and ``grad = dL/dp`` (the derivative of
  that curve). Paper 000 Fig. 1.
* **probe scene** (:func:`probe_curves`): fixed context pixels plus one probe pixel of label
  ``y`` whose foreground probability ``p`` is swept; ``grad`` = ``N * dL/dp_probe``
  (``wrt="p"``, logits ``log [1 - p, p]``) or ``N * dL/dz_probe`` (``wrt="z"``, logits
  ``[0, z]``, ``p = sigmoid(z)``), i.e. per-pixel scale (a pixel-mean term such as CE then gives
  ``-1/p``). Paper 000 Fig. 2 / 5 (context: every other pixel at true-class probability ``q``)
  and paper 002 Fig. 1 / 6 (context of paper 002 App. B: 2 foreground pixels at 0.8, 98
  background pixels at 0.1 foreground probability).

The figures are our reading of the captions (the published images are not in the text copies);
each figure's caption in the report says what is plotted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from segbench.reporting.figures import save_figure  # noqa: E402

LossSpec = tuple[str, dict[str, Any]]
"""``(registry name, params)`` of a loss, as in a study config."""

P_GRID = np.linspace(0.005, 0.995, 199)
"""Probabilities the curves are evaluated at (the ends 0 and 1 make logs infinite)."""

UNIFORM_N, UNIFORM_FG = 100, 10
P002_CONTEXT = (2, 0.8, 98, 0.1)
"""Paper 002 App. B: 2 foreground pixels at p = 0.8, 98 background pixels at p = 0.1."""

FG_COLOR, BG_COLOR = "#e6b800", "#6a3d9a"  # paper 002: yellow = foreground, purple = background


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Tiny tensors: intra-op threads only add overhead (20x slower on a busy 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _build(spec: LossSpec) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    from segbench.losses import build_loss

    name, params = spec
    return build_loss(name, **params)


def _two_class_logits(p_fg: torch.Tensor) -> torch.Tensor:
    """Logits ``log [1 - p, p]`` (softmax gives back exactly ``[1 - p, p]``), shape [2, n]."""
    return torch.log(torch.stack([1.0 - p_fg, p_fg]))


def uniform_curves(
    losses: Mapping[str, LossSpec],
    p_grid: Sequence[float] = P_GRID,
    n: int = UNIFORM_N,
    n_fg: int = UNIFORM_FG,
) -> pd.DataFrame:
    """Loss value and ``dL/dp`` when every pixel gives its true class probability ``p``.

    Returns:
        ``loss, p, value, grad`` (one row per loss and grid point).
    """
    labels = torch.zeros(n, dtype=torch.int64)
    labels[:n_fg] = 1
    target = labels.reshape(1, 1, n)
    with _one_thread():
        rows = _uniform_rows(losses, p_grid, labels, target, n)
    return pd.DataFrame(rows)


def _uniform_rows(
    losses: Mapping[str, LossSpec],
    p_grid: Sequence[float],
    labels: torch.Tensor,
    target: torch.Tensor,
    n: int,
) -> list[dict]:
    rows = []
    for label, spec in losses.items():
        fn = _build(spec)
        for p in p_grid:
            pt = torch.tensor(float(p), dtype=torch.float64, requires_grad=True)
            p_fg = torch.where(labels == 1, pt, 1.0 - pt)
            logits = _two_class_logits(p_fg).reshape(1, 2, 1, n)
            value = fn(logits, target)
            (grad,) = torch.autograd.grad(value, pt)
            rows.append({"loss": label, "p": float(p), "value": value.item(), "grad": grad.item()})
    return rows


def probe_curves(
    losses: Mapping[str, LossSpec],
    context_p_fg: Sequence[float],
    context_labels: Sequence[int],
    probe_label: int,
    wrt: str = "p",
    p_grid: Sequence[float] = P_GRID,
) -> pd.DataFrame:
    """Per-pixel gradient of one probe pixel against its foreground probability ``p``.

    Args:
        losses: label -> loss spec.
        context_p_fg, context_labels: foreground probability and label of the fixed pixels.
        probe_label: label ``y`` of the probe pixel (0 or 1).
        wrt: ``"p"`` (``N dL/dp``), ``"z"`` (``N dL/dz``, foreground logit with the background
            logit fixed at 0) or ``"dpdz"`` (``dp/dz`` of the softmax, loss-independent).

    Returns:
        ``loss, p, grad``.
    """
    if wrt not in ("p", "z", "dpdz"):
        raise ValueError(f"wrt must be 'p', 'z' or 'dpdz', got {wrt!r}")
    ctx_p = torch.tensor(list(context_p_fg), dtype=torch.float64)
    ctx_logits = _two_class_logits(ctx_p)
    n = len(ctx_p) + 1
    target = torch.tensor([*context_labels, probe_label], dtype=torch.int64).reshape(1, 1, n)
    with _one_thread():
        rows = _probe_rows(losses, ctx_logits, target, n, wrt, p_grid)
    return pd.DataFrame(rows)


def _probe_rows(
    losses: Mapping[str, LossSpec],
    ctx_logits: torch.Tensor,
    target: torch.Tensor,
    n: int,
    wrt: str,
    p_grid: Sequence[float],
) -> list[dict]:
    rows = []
    for label, spec in losses.items():
        fn = _build(spec) if wrt != "dpdz" else None
        for p in p_grid:
            if wrt == "p":
                v = torch.tensor(float(p), dtype=torch.float64, requires_grad=True)
                probe = _two_class_logits(v.reshape(1))
            else:
                z = float(np.log(p) - np.log1p(-p))
                v = torch.tensor(z, dtype=torch.float64, requires_grad=True)
                probe = torch.stack([torch.zeros_like(v), v]).reshape(2, 1)
            if wrt == "dpdz":
                (g,) = torch.autograd.grad(torch.softmax(probe, dim=0)[1, 0], v)
                rows.append({"loss": label, "p": float(p), "grad": float(g)})
                continue
            logits = torch.cat([ctx_logits, probe], dim=1).reshape(1, 2, 1, n)
            (g,) = torch.autograd.grad(fn(logits, target), v)
            rows.append({"loss": label, "p": float(p), "grad": float(g) * n})
    return rows


def p002_context() -> tuple[list[float], list[int]]:
    """Context pixels of paper 002 App. B (foreground probability, label)."""
    n_fg, p_fg, n_bg, p_bg = P002_CONTEXT
    return [p_fg] * n_fg + [p_bg] * n_bg, [1] * n_fg + [0] * n_bg


def uniform_context(q: float, n: int = UNIFORM_N, n_fg: int = UNIFORM_FG) -> tuple[list, list]:
    """Context of the paper 000 probe scene: ``n - 1`` pixels (``n_fg - 1`` foreground, the
    probe is the last foreground pixel) at true-class probability ``q``."""
    labels = [1] * (n_fg - 1) + [0] * (n - n_fg)
    return [q if y == 1 else 1.0 - q for y in labels], labels


def crossings(p: np.ndarray, a: np.ndarray, b: np.ndarray, tol: float = 0.05) -> list[float]:
    """Where two magnitude curves meet: interior sign changes of ``a - b`` (linearly
    interpolated) and grid ends where both are below ``tol`` of their maximum."""
    d = a - b
    out = [float(p[i]) for i in np.nonzero(d[1:-1] == 0)[0] + 1]  # met on a grid point
    for i in np.nonzero(np.sign(d[:-1]) * np.sign(d[1:]) < 0)[0]:
        t = d[i] / (d[i] - d[i + 1])
        out.append(float(p[i] + t * (p[i + 1] - p[i])))
    top = max(float(np.max(a)), float(np.max(b)), 1e-300)
    for i in (0, len(p) - 1):
        if max(a[i], b[i]) <= tol * top:
            out.append(float(p[i]))
    return sorted(out)


# ------------------------------------------------------------------------------------ paper 000

P000_FIG1_LOSSES: dict[str, LossSpec] = {
    "CE": ("ce", {}),
    "Dice": ("dice", {}),
    "0.5 Dice + 0.5 CE": ("dice_ce", {"w_dice": 0.5, "w_ce": 0.5}),
    "ML (Dice x CE)": ("ml", {}),
}
P000_CONTEXT_Q = (0.6, 0.8, 0.95)


def paper000_fig1(path: str | Path) -> pd.DataFrame:
    """Paper 000 Fig. 1: loss value and gradient magnitude against ``p`` (uniform scene)."""
    df = uniform_curves(P000_FIG1_LOSSES)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for label, g in df.groupby("loss", sort=False):
        axes[0].plot(g["p"], g["value"], label=label)
        axes[1].plot(g["p"], g["grad"].abs(), label=label)
    axes[0].set(xlabel="predicted probability p (true class)", ylabel="loss", title="Loss value")
    axes[1].set(
        xlabel="predicted probability p (true class)",
        ylabel="|dL/dp|",
        yscale="log",
        title="Gradient magnitude",
    )
    axes[0].legend(fontsize=8)
    fig.suptitle(
        f"Paper 000 Fig. 1 (recomputed): every pixel at true-class probability p "
        f"({UNIFORM_N} pixels, {UNIFORM_FG} foreground, background in the Dice mean)",
        fontsize=9,
    )
    fig.tight_layout()
    save_figure(fig, path)
    return df


def _caml_vs_ml(path: str | Path, confidence: str, figure: int, alpha: str) -> pd.DataFrame:
    """|dL/dp| of a probe pixel under CAML (``confidence``: ``"pixel"`` Eq. 10, ``"batch"``
    erratum Eq. 13) and ML, one curve per context probability q (paper 000 Figs. 2 and 5);
    ``alpha`` words CAML's weight in the title."""
    losses = {"ML": ("ml", {}), "CAML": ("caml", {"confidence": confidence})}
    parts = []
    for q in P000_CONTEXT_Q:
        ctx_p, ctx_y = uniform_context(q)
        d = probe_curves(losses, ctx_p, ctx_y, probe_label=1, wrt="p")
        d["q"] = q
        parts.append(d)
    df = pd.concat(parts, ignore_index=True)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    colors = plt.get_cmap("viridis")(np.linspace(0.1, 0.85, len(P000_CONTEXT_Q)))
    for color, q in zip(colors, P000_CONTEXT_Q, strict=True):
        for label, style in (("ML", "--"), ("CAML", "-")):
            g = df[(df["q"] == q) & (df["loss"] == label)]
            ax.plot(g["p"], g["grad"].abs(), style, color=color, label=f"{label}, context q={q}")
    ax.set(
        xlabel="predicted probability p of the probe pixel (true class)",
        ylabel="N |dL/dp|",
        yscale="log",
    )
    title = (
        f"Paper 000 Fig. {figure} (recomputed): CAML with {alpha} vs ML;\n"
        "one probe pixel, the other 99 pixels at true-class probability q"
    )
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    save_figure(fig, path)
    return df


def paper000_fig2(path: str | Path) -> pd.DataFrame:
    """Paper 000 Fig. 2: gradient magnitude of CAML (original per-pixel Eq. 10) vs ML."""
    return _caml_vs_ml(path, "pixel", 2, "per-pixel alpha = (1-p)^D (Eq. 10)")


def paper000_fig5(path: str | Path) -> pd.DataFrame:
    """Paper 000 Fig. 5 (erratum): gradient magnitude of CAML (batch-mean p_bar) vs ML."""
    return _caml_vs_ml(path, "batch", 5, "alpha = (1-p_bar)^D (erratum Eq. 13)")


# ------------------------------------------------------------------------------------ paper 002

P002_FIG1_LOSSES: dict[str, LossSpec] = {
    "Dice": ("dice", {"include_background": False}),
    "CE": ("ce", {}),
}
P002_FIG6_LOSSES: dict[str, LossSpec] = {
    "CE": ("ce", {}),
    "Dice": ("dice", {"include_background": False}),
    "Dice++ (gamma 2)": ("dice_pp", {"gamma": 2.0, "include_background": False}),
    "Tversky (0.3/0.7)": ("tversky", {"alpha": 0.3, "beta": 0.7, "include_background": False}),
    "Dice surgery, no decline (Eq. 9)": ("dice_surgery", {"n": None}),
    "Dice surgery n=1": ("dice_surgery", {"n": 1}),
    "Dice surgery n=5": ("dice_surgery", {"n": 5}),
    "Dice surgery n=20": ("dice_surgery", {"n": 20}),
}


def _fg_bg(losses: Mapping[str, LossSpec], wrt: str) -> pd.DataFrame:
    ctx_p, ctx_y = p002_context()
    parts = []
    for y in (1, 0):
        d = probe_curves(losses, ctx_p, ctx_y, probe_label=y, wrt=wrt)
        d["y"] = y
        parts.append(d)
    return pd.concat(parts, ignore_index=True)


def paper002_fig1(path: str | Path) -> pd.DataFrame:
    """Paper 002 Fig. 1: |dL/dp|, |dp/dz|, |dL/dz| for a foreground and a background pixel,
    Dice (top) vs CE (bottom); red squares where the two magnitudes meet in |dL/dz|."""
    parts = []
    for wrt in ("p", "dpdz", "z"):
        d = _fg_bg(P002_FIG1_LOSSES, wrt)
        d["wrt"] = wrt
        parts.append(d)
    df = pd.concat(parts, ignore_index=True)
    heads = {"p": "N |dL/dp|", "dpdz": "|dp/dz|", "z": "N |dL/dz|"}
    fig, axes = plt.subplots(2, 3, figsize=(11, 6))
    for r, loss in enumerate(P002_FIG1_LOSSES):
        for c, wrt in enumerate(heads):
            ax = axes[r][c]
            curves = {}
            for y, color, name in ((1, FG_COLOR, "y = 1"), (0, BG_COLOR, "y = 0")):
                g = df[(df["loss"] == loss) & (df["wrt"] == wrt) & (df["y"] == y)]
                curves[y] = (g["p"].to_numpy(), g["grad"].abs().to_numpy())
                ax.plot(*curves[y], color=color, label=name, lw=2 if y else 1.2)
            if wrt == "z":
                p, a = curves[1]
                for x in crossings(p, a, curves[0][1]):
                    ax.plot([x], [np.interp(x, p, a)], "s", color="red", ms=7, mfc="none", mew=2)
            ax.set_title(f"{loss}: {heads[wrt]}", fontsize=9)
            ax.set_xlabel("predicted probability p (foreground)", fontsize=8)
            if wrt == "p":
                ax.set_yscale("log")
            ax.legend(fontsize=7)
    fig.suptitle(
        "Paper 002 Fig. 1 (recomputed): one probe pixel next to 2 foreground pixels at p = 0.8 "
        "and 98 background pixels at p = 0.1 (App. B); red squares: |dL/dz| equilibria",
        fontsize=9,
    )
    fig.tight_layout()
    save_figure(fig, path)
    return df


def paper002_fig6(path: str | Path) -> pd.DataFrame:
    """Paper 002 Fig. 6: normalised |dL/dz| for a foreground and a background pixel, per loss
    (each loss divided by its largest value over both curves)."""
    df = _fg_bg(P002_FIG6_LOSSES, "z")
    df["mag"] = df["grad"].abs()
    df["normalized"] = df["mag"] / df.groupby("loss")["mag"].transform("max")
    n = len(P002_FIG6_LOSSES)
    ncols = 4
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.7 * nrows), squeeze=False)
    for ax, loss in zip(axes.flat, P002_FIG6_LOSSES, strict=False):
        for y, color in ((1, FG_COLOR), (0, BG_COLOR)):
            g = df[(df["loss"] == loss) & (df["y"] == y)]
            ax.plot(g["p"], g["normalized"], color=color, label=f"y = {y}")
        ax.set_title(loss, fontsize=8)
        ax.set_xlabel("p (foreground)", fontsize=7)
        ax.set_ylim(0, 1.05)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    for ax in axes.flat[n:]:
        ax.axis("off")
    fig.suptitle(
        "Paper 002 Fig. 6 (recomputed): normalised |dL/dz| of a probe pixel against its "
        "foreground probability p (context of App. B)",
        fontsize=9,
    )
    fig.tight_layout()
    save_figure(fig, path)
    return df


ANALYTIC_FIGURES: dict[str, Callable[[str | Path], pd.DataFrame]] = {
    "paper000_fig1": paper000_fig1,
    "paper000_fig2": paper000_fig2,
    "paper000_fig5": paper000_fig5,
    "paper002_fig1": paper002_fig1,
    "paper002_fig6": paper002_fig6,
}
"""Figure id (``report.analytic_figures``) -> function drawing it to a path."""


def build_analytic_figure(figure_id: str, path: str | Path) -> pd.DataFrame:
    """Draw one analytic figure; returns the curve data.

    Raises:
        ValueError: unknown id, listing the known ones.
    """
    if figure_id not in ANALYTIC_FIGURES:
        raise ValueError(
            f"unknown analytic figure {figure_id!r}; known: {', '.join(ANALYTIC_FIGURES)}"
        )
    return ANALYTIC_FIGURES[figure_id](path)

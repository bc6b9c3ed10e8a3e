"""Qualitative panel (papers 000 Fig. 3-4, 003 Fig. 5): image, ground truth, the predictions of
two losses and where they differ, on the test image where the two losses disagree most.

Selection: over every cell (model, fraction, seed, fold) where both losses have a completed run
of the dataset, the hard predictions (``argmax`` of the saved float16 probabilities; ties go to
the lower class, as in :mod:`segbench.metrics`) of each test image are compared; the image with
the largest share of pixels predicted differently is shown (ties: the first cell in sorted
order, then the first image id). Identity comes from each run's ``run.json``.

3D volumes (docs/3d.md): the volume is chosen the same way (share of voxels); the panel shows
its slice along the last array axis (z) with the most voxels predicted differently (ties: the
lowest z), the image slice rescaled to its own [min, max] (3D images are z-scored).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from segbench.reporting.figures import placeholder_figure, save_figure  # noqa: E402
from segbench.reporting.pairs import CELL  # noqa: E402


@dataclass
class Choice:
    """The image where the two losses disagree most."""

    cell: dict[str, Any]
    image_id: str
    disagreement: float
    pred_a: np.ndarray
    pred_b: np.ndarray


def load_predictions(probs_npz: str | Path) -> tuple[np.ndarray, list[str]]:
    """Hard predictions ``[N, *spatial]`` (uint8) and image ids of a run's ``probs.npz``."""
    with np.load(probs_npz, allow_pickle=False) as z:
        pred = np.argmax(z["probs"], axis=1).astype(np.uint8)
        ids = [str(i) for i in z["ids"]]
    return pred, ids


def disagreement(pred_a: np.ndarray, pred_b: np.ndarray) -> np.ndarray:
    """Share of pixels predicted differently, per image (``[N]``)."""
    if pred_a.shape != pred_b.shape:
        raise ValueError(f"prediction shapes differ: {pred_a.shape} vs {pred_b.shape}")
    diff = pred_a != pred_b
    return diff.reshape(diff.shape[0], -1).mean(axis=1)


def _run_identity(run_json: str | Path) -> tuple[dict[str, Any], str]:
    meta = json.loads(Path(run_json).read_text())
    return dict(meta["run"]), str(meta.get("result", {}).get("status", "completed"))


def match_runs(
    runs_a: Sequence[tuple[str, str]], runs_b: Sequence[tuple[str, str]]
) -> list[tuple[dict[str, Any], str, str]]:
    """Pair the completed runs of two losses on (model, fraction, seed, fold).

    Args:
        runs_a, runs_b: ``(run.json, probs.npz)`` paths of each loss's runs of one dataset.

    Returns:
        ``(cell, probs_a, probs_b)`` sorted by cell; diverged runs are left out.
    """
    by_cell: dict[tuple, dict[str, str]] = {}
    for side, runs in (("a", runs_a), ("b", runs_b)):
        for run_json, probs in runs:
            ident, status = _run_identity(run_json)
            if status != "completed":
                continue
            key = tuple(str(ident[k]) for k in CELL)
            by_cell.setdefault(key, {})[side] = probs
    out = []
    for key in sorted(by_cell):
        sides = by_cell[key]
        if "a" in sides and "b" in sides:
            out.append((dict(zip(CELL, key, strict=True)), sides["a"], sides["b"]))
    return out


def choose_image(pairs: Sequence[tuple[dict[str, Any], str, str]]) -> Choice | None:
    """The (cell, test image) with the largest disagreement; None without pairs."""
    best: Choice | None = None
    for cell, probs_a, probs_b in pairs:
        pa, ids_a = load_predictions(probs_a)
        pb, ids_b = load_predictions(probs_b)
        if ids_a != ids_b:
            common = sorted(set(ids_a) & set(ids_b))
            pa = pa[[ids_a.index(i) for i in common]]
            pb = pb[[ids_b.index(i) for i in common]]
            ids_a = common
        if not ids_a:
            continue
        d = disagreement(pa, pb)
        k = int(np.argmax(d))
        if best is None or d[k] > best.disagreement:
            best = Choice(dict(cell), ids_a[k], float(d[k]), pa[k], pb[k])
    return best


def _label_cmap(num_classes: int) -> ListedColormap:
    base = plt.get_cmap("tab10")
    colors = [(0.0, 0.0, 0.0, 1.0)] + [base(i % 10) for i in range(num_classes - 1)]
    return ListedColormap(colors)


def _show_image(ax: Any, image: np.ndarray) -> None:
    if image.shape[0] == 3:
        ax.imshow(np.clip(np.transpose(image, (1, 2, 0)), 0, 1))
    else:
        ax.imshow(image[0], cmap="gray", vmin=0, vmax=1)


def qualitative_panel(
    image: np.ndarray,
    mask: np.ndarray,
    choice: Choice,
    losses: tuple[str, str],
    class_names: Sequence[str],
    path: str | Path,
    title: str = "",
) -> None:
    """Five panels: image, ground truth, prediction of each loss, disagreement map.

    The disagreement map shows the image in grey and colours the pixels where the two
    predictions differ: green where only ``losses[0]`` is right, red where only ``losses[1]``
    is right, yellow where both are wrong.
    """
    a, b = choice.pred_a, choice.pred_b
    cmap = _label_cmap(len(class_names))
    fig, axes = plt.subplots(1, 5, figsize=(14, 3.3))
    _show_image(axes[0], image)
    axes[0].set_title(f"image {choice.image_id}", fontsize=9)
    for ax, lab, name in ((axes[1], mask, "ground truth"), (axes[2], a, losses[0]),
                          (axes[3], b, losses[1])):  # fmt: skip
        ax.imshow(lab, cmap=cmap, vmin=-0.5, vmax=len(class_names) - 0.5, interpolation="nearest")
        ax.set_title(name, fontsize=9)
    _show_image(axes[4], image)
    overlay = np.zeros((*mask.shape, 4))
    differ = a != b
    only_a = differ & (a == mask)
    only_b = differ & (b == mask)
    both_wrong = differ & ~only_a & ~only_b
    overlay[only_a] = (0.1, 0.8, 0.1, 0.85)
    overlay[only_b] = (0.9, 0.1, 0.1, 0.85)
    overlay[both_wrong] = (1.0, 0.9, 0.0, 0.85)
    axes[4].imshow(overlay, interpolation="nearest")
    axes[4].set_title(f"differ: {100 * choice.disagreement:.1f} % of pixels", fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [Patch(color=cmap(i), label=n) for i, n in enumerate(class_names)]
    handles += [
        Patch(color=(0.1, 0.8, 0.1), label=f"only {losses[0]} right"),
        Patch(color=(0.9, 0.1, 0.1), label=f"only {losses[1]} right"),
        Patch(color=(1.0, 0.9, 0.0), label="both wrong"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=min(8, len(handles)), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.1, 1, 0.95))
    save_figure(fig, path)


def axial_slice(
    image: np.ndarray, mask: np.ndarray, choice: Choice
) -> tuple[np.ndarray, np.ndarray, Choice, int]:
    """The z slice of a 3D choice shown in the panel (module docstring): image ``[C, X, Y]``
    rescaled to [0, 1], mask ``[X, Y]``, the choice with 2D predictions, and z."""
    differ = (choice.pred_a != choice.pred_b).sum(axis=(0, 1))
    z = int(np.argmax(differ))
    img = image[..., z].astype(np.float64)
    lo, hi = float(img.min()), float(img.max())
    img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
    sliced = replace(choice, pred_a=choice.pred_a[..., z], pred_b=choice.pred_b[..., z])
    return img, mask[..., z], sliced, z


def qualitative_figure(
    runs_a: Sequence[tuple[str, str]],
    runs_b: Sequence[tuple[str, str]],
    prepared_npz: str | Path,
    losses: tuple[str, str],
    path: str | Path,
    dataset: str = "",
) -> Choice | None:
    """Choose the image (module docstring) and draw :func:`qualitative_panel`; a placeholder
    when the two losses share no completed run. Returns the choice."""
    from segbench.data.io import load_prepared

    choice = choose_image(match_runs(runs_a, runs_b))
    if choice is None:
        placeholder_figure(
            path,
            f"Qualitative comparison {losses[0]} vs {losses[1]} ({dataset})",
            "the two losses have no completed run of the same (model, fraction, seed, fold)",
        )
        return None
    data = load_prepared(prepared_npz)
    k = int(data.indices([choice.image_id])[0])
    cell = ", ".join(f"{key}={choice.cell[key]}" for key in CELL)
    title = f"{dataset}: {losses[0]} vs {losses[1]} ({cell}), largest disagreement"
    image, mask, shown = data.images[k], data.masks[k], choice
    if mask.ndim == 3:  # a 3D volume: its slice of largest disagreement
        image, mask, shown, z = axial_slice(image, mask, choice)
        title += f", slice z = {z}"
    qualitative_panel(image, mask, shown, losses, data.class_names, path, title=title)
    return choice

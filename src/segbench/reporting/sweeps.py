"""Loss families a study runs at several values of one parameter: the lambda ablation of paper
003 Fig. 3 (RCE / RFL / DBCE ``lam``, the Dice weight of DiceCE / LogDiceCE) and the alpha
ablation of paper 004 Fig. 3 (Balance loss ``alpha``, Eq. 13).

Two steps, so that building the DAG neither imports torch nor rebuilds a loss:

* while Snakemake builds the DAG, :func:`requests_sweep_figure` decides from the study's
  ``losses`` section alone whether a sweep's figure (:attr:`Sweep.rule`) is requested, and
  :func:`reference_losses` names the losses drawn beside the sweep as dashed lines;
* the figure job reads the loss configurations the runs were trained with from their
  ``run.json`` (:func:`sweeps_from_runs`) and resolves each swept value there
  (:func:`parameter_sweeps`), so a default such as RCE's ``lam`` = 1.0 for L1 counts.

No plotting imports (:mod:`segbench.reporting.figures` draws the figures).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from segbench.runspec import split_name


@dataclass(frozen=True)
class Sweep:
    """One kind of parameter ablation and the figure that draws it."""

    name: str
    """Sweep name (``lambda``, ``alpha``)."""
    rule: str
    """The reporting rule (and :mod:`segbench.reporting.outputs` entry) of its figure."""
    column: str
    """Column of the swept value in :func:`parameter_sweeps` (and the figure's x axis)."""
    params: Mapping[str, str]
    """Loss registry name -> the loss parameter this sweep varies."""
    log_x: bool
    """Logarithmic x axis (lambda spans decades; alpha is a convex weight in [0, 1])."""
    reference: bool
    """Draw the losses run beside the sweep (:func:`reference_losses`) as dashed lines."""
    xlabel: str


SWEEPS: dict[str, Sweep] = {
    # Paper 003 Fig. 3: "the balancing weight lambda" of RCE = CE + lambda R (Eq. 7), of DBCE
    # (CE + lambda DB, Sec. 4.2.3) and of the compounds "CE - lambda log(Dice)" (l.611), i.e.
    # the Dice weight of DiceCE / LogDiceCE (and of their focal variants).
    "lambda": Sweep(
        name="lambda",
        rule="lambda_ablation",
        column="lam",
        params={
            "rce": "lam",
            "rfl": "lam",
            "dbce": "lam",
            "dice_ce": "w_dice",
            "log_dice_ce": "w_dice",
            "dice_focal": "w_dice",
            "log_dice_focal": "w_dice",
        },
        log_x=True,
        reference=False,
        xlabel="λ",
    ),
    # Paper 004 Fig. 3: "BL = alpha Intra-CBL + (1 - alpha) Inter-CBL" (Eq. 13), "the dashed
    # lines represent the DSC performance of the other loss functions".
    "alpha": Sweep(
        name="alpha",
        rule="alpha_ablation",
        column="alpha",
        params={"balance": "alpha"},
        log_x=False,
        reference=True,
        xlabel="α",
    ),
}
"""Every sweep, by name (the figures the reporting stage can request)."""

LAMBDA_PARAM = "lam"
"""The ``lam`` parameter of RCE / RFL / DBCE (kept for callers of the lambda figure)."""


def get_sweep(name: str) -> Sweep:
    """:data:`SWEEPS` entry ``name``.

    Raises:
        ValueError: an unknown name, listing the known ones.
    """
    if name not in SWEEPS:
        raise ValueError(f"unknown sweep {name!r}; known: {', '.join(SWEEPS)}")
    return SWEEPS[name]


def swept_param(cfg: Mapping[str, Any], sweep: str = "lambda") -> str | None:
    """The parameter ``sweep`` varies for the loss entry ``cfg`` (None: not part of it)."""
    return get_sweep(sweep).params.get(str(cfg["name"]))


def family(cfg: Mapping[str, Any], sweep: str = "lambda") -> str:
    """A loss family: the registry name plus every parameter except the swept one
    (``rce``, ``rce(penalty=kl)``, ``dice_ce(w_ce=1.0)``)."""
    name, params = split_name(cfg)
    swept = swept_param(cfg, sweep)
    others = ", ".join(f"{k}={v}" for k, v in sorted(params.items()) if k != swept)
    return f"{name}({others})" if others else str(name)


def requests_sweep_figure(losses: Mapping[str, Mapping[str, Any]], sweep: str = "lambda") -> bool:
    """Whether some family of ``losses`` is given at two or more values of the parameter
    ``sweep`` varies, an absent value (the loss's default) counting as one setting. Needs no
    loss implementation.

    Equals ``not parameter_sweeps(losses, sweep).empty`` except for a family that spells the
    default value out next to an entry relying on it (e.g. ``{name: rce}`` and ``{name: rce,
    lam: 1.0}``): the figure is then requested and, having no sweep to draw, shows a
    placeholder (tests/reporting/test_sweeps.py checks the equality on every shipped study).
    """
    settings: dict[str, set[Any]] = {}
    for cfg in losses.values():
        param = swept_param(cfg, sweep)
        if param is not None:
            settings.setdefault(family(cfg, sweep), set()).add(cfg.get(param))
    return any(len(v) >= 2 for v in settings.values())


def requests_lambda_figure(losses: Mapping[str, Mapping[str, Any]]) -> bool:
    """:func:`requests_sweep_figure` of the lambda sweep (paper 003 Fig. 3)."""
    return requests_sweep_figure(losses, "lambda")


def _resolved(name: str, params: Mapping[str, Any], param: str) -> float | None:
    """The value of ``param`` a loss is built with: as given, else the built loss's attribute of
    that name (a default that depends on other parameters: RCE's ``lam`` by penalty), else the
    constructor's default."""
    if param in params:
        return float(params[param])
    from segbench.losses import LOSSES, build_loss

    value = getattr(build_loss(name, **params), param, None)
    if value is None:
        default = inspect.signature(LOSSES.get(name)).parameters.get(param)
        if default is None or default.default is inspect.Parameter.empty:
            return None
        value = default.default
    return None if value is None else float(value)


def _short_labels(families: Mapping[str, tuple[str, dict[str, Any]]]) -> dict[str, str]:
    """Family -> legend label: the registry name plus only the parameters that differ between
    the families of that name (``rce(penalty=l1)`` / ``rce(penalty=kl)``; ``dbce``)."""
    by_name: dict[str, list[str]] = {}
    for fam, (name, _) in families.items():
        by_name.setdefault(name, []).append(fam)
    out = {}
    for name, fams in by_name.items():
        keys = sorted({k for f in fams for k in families[f][1]})
        varying = [k for k in keys if len({repr(families[f][1].get(k)) for f in fams}) > 1]
        for f in fams:
            given = families[f][1]
            shown = ", ".join(f"{k}={given[k]}" for k in varying if k in given)
            out[f] = f"{name}({shown})" if shown else name
    return out


def parameter_sweeps(
    losses: Mapping[str, Mapping[str, Any]], sweep: str = "lambda"
) -> pd.DataFrame:
    """Losses that form a sweep of the parameter ``sweep`` varies.

    The value is the resolved one (:func:`_resolved`: RCE's ``lam`` default 1.0 for L1, 0.1
    for KL, counts). Only families with at least two distinct values are returned.

    Args:
        losses: loss key -> ``{name, **params}`` (:func:`run_losses` of the runs, or a study's
            ``losses`` section).
        sweep: a :data:`SWEEPS` name.

    Returns:
        ``loss`` (key), ``family`` (:func:`family`), ``label`` (a short legend label),
        and the value in the column :attr:`Sweep.column`; empty when nothing sweeps.
    """
    col = get_sweep(sweep).column
    rows, fams = [], {}
    for key, cfg in losses.items():
        param = swept_param(cfg, sweep)
        if param is None:
            continue
        name, params = split_name(cfg)
        value = _resolved(name, params, param)
        if value is not None:
            fam = family(cfg, sweep)
            fams[fam] = (name, {k: v for k, v in params.items() if k != param})
            rows.append({"loss": key, "family": fam, col: value})
    df = pd.DataFrame(rows, columns=["loss", "family", col])
    if df.empty:
        return df.assign(label=pd.Series(dtype=str))[["loss", "family", "label", col]]
    n = df.groupby("family")[col].transform("nunique")
    df = df[n >= 2].reset_index(drop=True)
    labels = _short_labels({f: fams[f] for f in df["family"].unique()})
    df["label"] = df["family"].map(labels)
    return df[["loss", "family", "label", col]]


def lambda_sweeps(losses: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """:func:`parameter_sweeps` of the lambda sweep (column ``lam``)."""
    return parameter_sweeps(losses, "lambda")


def reference_losses(
    grid: Sequence[Mapping[str, Any]] | None,
    losses: Mapping[str, Mapping[str, Any]],
    used: Iterable[str],
    sweep: str,
) -> list[str]:
    """The losses drawn as dashed reference lines beside a sweep (paper 004 Fig. 3: "the
    dashed lines represent the DSC performance of the other loss functions"): the losses that
    share a grid block with a loss of the sweep and are not part of it, in ``losses`` order.

    Args:
        grid: the study's ``grid`` (None / empty: one block with every loss).
        losses: the study's ``losses`` section.
        used: the loss keys the study runs (a search's derived keys are not in ``losses``).
        sweep: a :data:`SWEEPS` name.

    Returns:
        Empty when the sweep draws no reference (:attr:`Sweep.reference`) or nothing sweeps.
    """
    if not get_sweep(sweep).reference:
        return []
    used = set(used)
    swept = {k for k in used if k in losses and swept_param(losses[k], sweep) is not None}
    if not swept:
        return []
    beside: set[str] = set()
    for block in grid or [{}]:
        keys = set(block.get("losses", list(losses)))
        if keys & swept:
            beside |= keys
    return [k for k in losses if k in beside and k in used and k not in swept]


def run_losses(run_jsons: Iterable[str | Path]) -> dict[str, dict[str, Any]]:
    """Loss key -> the ``loss_cfg`` the runs were trained with (``run.json`` ``config``).

    Raises:
        ValueError: two runs of one loss key with different loss configurations.
    """
    out: dict[str, dict[str, Any]] = {}
    for path in run_jsons:
        cfg = json.loads(Path(path).read_text())["config"]
        key, loss_cfg = str(cfg["loss"]), dict(cfg["loss_cfg"])
        if out.setdefault(key, loss_cfg) != loss_cfg:
            raise ValueError(
                f"{path}: loss {key!r} was trained with {loss_cfg}, another run of it with "
                f"{out[key]}"
            )
    return out


def sweeps_from_runs(run_jsons: Iterable[str | Path], sweep: str = "lambda") -> pd.DataFrame:
    """:func:`parameter_sweeps` of the loss configurations recorded in the runs' ``run.json``."""
    return parameter_sweeps(run_losses(run_jsons), sweep)

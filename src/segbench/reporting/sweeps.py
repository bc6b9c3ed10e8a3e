"""Loss families a study runs at several values of ``lam`` (paper 003 Fig. 3: RCE / RFL / DBCE).

Two steps, so that building the DAG neither imports torch nor rebuilds a loss:

* while Snakemake builds the DAG, :func:`requests_lambda_figure` decides from the study's
  ``losses`` section alone whether ``results/figures/lambda_ablation.png`` is requested;
* the ``lambda_ablation`` job reads the loss configurations the runs were trained with from
  their ``run.json`` (:func:`sweeps_from_runs`) and resolves each ``lam`` there
  (:func:`lambda_sweeps`: ``build_loss(...).lam``, so a default such as RCE's 1.0 counts).

No plotting imports (:mod:`segbench.reporting.figures` draws the figure).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from segbench.runspec import split_name

LAMBDA_PARAM = "lam"
"""The loss parameter the ablation sweeps (paper 003 Fig. 3: RCE / RFL / DBCE lambda)."""


def family(cfg: Mapping[str, Any]) -> str:
    """A loss family: the registry name plus every parameter except ``lam``
    (``rce``, ``rce(penalty=kl)``)."""
    name, params = split_name(cfg)
    others = ", ".join(f"{k}={v}" for k, v in sorted(params.items()) if k != LAMBDA_PARAM)
    return f"{name}({others})" if others else str(name)


def requests_lambda_figure(losses: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether some family of ``losses`` is given at two or more ``lam`` settings, an absent
    ``lam`` (the loss's default) counting as one setting. Needs no loss implementation.

    Equals ``not lambda_sweeps(losses).empty`` except for a family that spells the default
    value out next to an entry relying on it (e.g. ``{name: rce}`` and ``{name: rce, lam:
    1.0}``): the figure is then requested and, having no sweep to draw, shows a placeholder
    (tests/reporting/test_sweeps.py checks the equality on every shipped study).
    """
    settings: dict[str, set[Any]] = {}
    for cfg in losses.values():
        settings.setdefault(family(cfg), set()).add(cfg.get(LAMBDA_PARAM))
    return any(len(v) >= 2 for v in settings.values())


def lambda_sweeps(losses: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Losses that form a sweep of their ``lam`` parameter.

    ``lam`` is the resolved value (``build_loss(...).lam``, so a default such as RCE's 1.0 for
    L1 counts). Only families with at least two distinct ``lam`` values are returned.

    Args:
        losses: loss key -> ``{name, **params}`` (:func:`run_losses` of the runs, or a study's
            ``losses`` section).

    Returns:
        ``loss`` (key), ``family`` (:func:`family`), ``lam``; empty when nothing sweeps ``lam``.
    """
    from segbench.losses import build_loss

    rows = []
    for key, cfg in losses.items():
        name, params = split_name(cfg)
        lam = getattr(build_loss(name, **params), LAMBDA_PARAM, None)
        if lam is not None:
            rows.append({"loss": key, "family": family(cfg), "lam": float(lam)})
    df = pd.DataFrame(rows, columns=["loss", "family", "lam"])
    if df.empty:
        return df
    n = df.groupby("family")["lam"].transform("nunique")
    return df[n >= 2].reset_index(drop=True)


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


def sweeps_from_runs(run_jsons: Iterable[str | Path]) -> pd.DataFrame:
    """:func:`lambda_sweeps` of the loss configurations recorded in the runs' ``run.json``."""
    return lambda_sweeps(run_losses(run_jsons))

"""Every output of the reporting stage, declared once: rule, output name, path template, caption,
report category, subcategory and labels.

``workflow/rules/report.smk`` takes each rule's ``output:`` from here (``report_output`` in
``workflow/rules/common.smk`` wraps an entry in Snakemake's ``report()``), and
``workflow/rules/common.smk`` builds the targets of ``rule all`` from the same table
(:func:`targets`), so no output path is written twice. tests/reporting/test_outputs.py checks
that the table equals the outputs of a real dry run and that every caption exists.

No plotting or torch imports: the workflow imports this while Snakemake builds the DAG.

Templates hold Snakemake wildcards (``{dataset}``) and values the workflow fills in before the
rule is defined (``{figure}``: the configured ``report.analytic_figures``); labels and the
subcategory are templates too.

Category names must not equal a target that Snakemake's report already defines for its
reStructuredText links (``Workflow``, ``Statistics``: ``.. _Statistics: javascript:...``);
docutils compares target names case-insensitively and a duplicate prints "System Message:
WARNING/2 ... Duplicate explicit target name" into every caption and the front page. Hence
"Statistical tests", not "Statistics" (:data:`RESERVED_TARGETS`, checked on import).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from segbench import paths
from segbench.reporting import search

CAPTION_DIR = "workflow/report"
"""Captions (reStructuredText) relative to the repository root; rules name them relative to
``workflow/rules/`` (:attr:`ReportOutput.caption_path`)."""

RESERVED_TARGETS = ("workflow", "statistics")
"""Target names Snakemake's report defines itself (lower case; docutils ignores case)."""


@dataclass(frozen=True)
class ReportOutput:
    """One output file of a reporting rule (``category`` None: an output outside the report)."""

    rule: str
    key: str | None
    """Output name in the rule (``csv=...``); None for the rule's only output."""
    path: str
    caption: str | None = None
    """File name under :data:`CAPTION_DIR`."""
    category: str | None = None
    subcategory: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def caption_path(self) -> str | None:
        """The caption as a rule names it (relative to ``workflow/rules/``)."""
        return None if self.caption is None else f"../report/{self.caption}"

    @property
    def in_report(self) -> bool:
        return self.category is not None

    def fields(self) -> set[str]:
        """Template fields of :attr:`path` (``{"dataset"}``)."""
        return {name for _, name, _, _ in string.Formatter().parse(self.path) if name}

    def fill(self, **values: str) -> ReportOutput:
        """This entry with ``values`` filled into path, subcategory and labels; other fields
        (the rule's wildcards) stay as ``{name}``."""
        return ReportOutput(
            rule=self.rule,
            key=self.key,
            path=_fill(self.path, values),
            caption=self.caption,
            category=self.category,
            subcategory=None if self.subcategory is None else _fill(self.subcategory, values),
            labels={k: _fill(v, values) for k, v in self.labels.items()},
        )


class _Keep(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _fill(template: str, values: Mapping[str, str]) -> str:
    return template.format_map(_Keep(values))


def _formats(
    rule: str,
    stem: str,
    exts: Mapping[str, str],
    *,
    key_prefix: str = "",
    labels: Mapping[str, str],
    **kw: str,
) -> list[ReportOutput]:
    """One entry per format: output name ``{key_prefix}{ext}`` and label ``format``."""
    return [
        ReportOutput(
            rule,
            f"{key_prefix}{ext}",
            f"{stem}.{ext}",
            labels={**labels, "format": fmt},
            **kw,
        )
        for ext, fmt in exts.items()
    ]


CSV_MD = {"csv": "csv", "md": "markdown"}
CSV_MD_TEX = {"csv": "csv", "md": "markdown", "tex": "latex"}

_DATASET_TABLES = {"category": "Tables", "subcategory": "{dataset}"}
_STATS = "Statistical tests"
_PAPER = "Paper comparison"
_FIGURES = "Figures"


def _stats_tables(stem: str, key: str, subcategory: str, table: str) -> list[ReportOutput]:
    """The csv + markdown pair of one ``stats_tables`` table: outputs ``{key}_csv`` /
    ``{key}_md``, caption ``{key}.rst``."""
    return _formats(
        "stats_tables",
        f"results/tables/{stem}",
        CSV_MD,
        key_prefix=f"{key}_",
        caption=f"{key}.rst",
        category=_STATS,
        subcategory=subcategory,
        labels={"table": table},
    )


OUTPUTS: tuple[ReportOutput, ...] = (
    ReportOutput(
        "aggregate",
        None,
        paths.TIDY_TABLE,
        "tidy.rst",
        "Tables",
        "Tidy results",
        {"table": "tidy (run x class)"},
    ),
    ReportOutput(
        "search_selection",
        "csv",
        search.SELECTION_TABLE,
        None,
        "Tables",
        "Hyper-parameter search",
        {"table": "search selection", "format": "csv"},
    ),
    ReportOutput(
        "search_selection",
        "md",
        search.SELECTION_MD,
        None,
        "Tables",
        "Hyper-parameter search",
        {"table": "search selection", "format": "markdown"},
    ),
    ReportOutput("search_selection", "tidy", search.SELECTED_TIDY),
    *_formats(
        "paper_table",
        "results/tables/{dataset}_table",
        CSV_MD_TEX,
        caption="paper_table.rst",
        labels={"dataset": "{dataset}", "table": "main metric"},
        **_DATASET_TABLES,
    ),
    *_formats(
        "paper_table",
        "results/tables/{dataset}_metrics",
        CSV_MD_TEX,
        key_prefix="metrics_",
        caption="metrics_table.rst",
        labels={"dataset": "{dataset}", "table": "all metrics"},
        **_DATASET_TABLES,
    ),
    *_stats_tables("summary", "summary", "Summary (mean, std, bootstrap CI)", "summary"),
    *_stats_tables("paired_wilcoxon", "paired", "Paired tests (Wilcoxon + Holm)", "paired tests"),
    *_stats_tables("friedman", "friedman", "Ranking (Friedman + Nemenyi)", "average ranks"),
    ReportOutput(
        "stats_tables",
        "cd",
        "results/figures/cd_diagram.png",
        "cd_diagram.rst",
        _STATS,
        "Ranking (Friedman + Nemenyi)",
        {"figure": "critical-difference diagram"},
    ),
    *_formats(
        "published_table",
        "results/tables/published",
        CSV_MD,
        caption="published.rst",
        category=_PAPER,
        subcategory="Reproduced vs published",
        labels={"table": "reproduced vs published"},
    ),
    *_formats(
        "claims_table",
        "results/tables/claims",
        CSV_MD,
        caption="claims.rst",
        category=_PAPER,
        subcategory="Claims",
        labels={"table": "claims"},
    ),
    ReportOutput(
        "figures",
        None,
        "results/figures/miou_vs_fraction.png",
        "miou_vs_fraction.rst",
        _FIGURES,
        "Training fraction",
        {"figure": "metric vs training fraction"},
    ),
    ReportOutput(
        "lambda_ablation",
        None,
        "results/figures/lambda_ablation.png",
        "lambda_ablation.rst",
        _FIGURES,
        "Lambda ablation",
        {"figure": "metric vs lambda"},
    ),
    ReportOutput(
        "alpha_ablation",
        None,
        "results/figures/alpha_ablation.png",
        "alpha_ablation.rst",
        _FIGURES,
        "Alpha ablation",
        {"figure": "metric vs alpha"},
    ),
    ReportOutput(
        "training_curves",
        None,
        "results/figures/training_curves.png",
        "training_curves.rst",
        _FIGURES,
        "Training curves",
        {"figure": "training curves per optimiser"},
    ),
    ReportOutput(
        "reliability_diagrams",
        "png",
        "results/figures/reliability.png",
        "reliability.rst",
        _FIGURES,
        "Calibration",
        {"figure": "reliability diagrams"},
    ),
    ReportOutput(
        "reliability_diagrams",
        "csv",
        "results/tables/reliability_pooled.csv",
        "reliability.rst",
        _FIGURES,
        "Calibration",
        {"figure": "pooled reliability bins (csv)"},
    ),
    ReportOutput(
        "score_violins",
        None,
        "results/figures/dice_violins.png",
        "violins.rst",
        _FIGURES,
        "Per-image distribution",
        {"figure": "DSC violin plots"},
    ),
    ReportOutput(
        "qualitative",
        None,
        "results/figures/qualitative/{dataset}.png",
        "qualitative.rst",
        _FIGURES,
        "Qualitative",
        {"dataset": "{dataset}"},
    ),
    ReportOutput(
        "analytic_figures",
        None,
        "results/figures/analytic/{figure}.png",
        "analytic.rst",
        _FIGURES,
        "Analytic (from the loss implementations)",
        {"figure": "{figure}"},
    ),
)
"""The table (order: rule, then the order of the rule's outputs)."""

RULES: tuple[str, ...] = tuple(dict.fromkeys(o.rule for o in OUTPUTS))


def _check() -> None:
    seen: set[tuple[str, str | None]] = set()
    for o in OUTPUTS:
        if (o.rule, o.key) in seen:
            raise ValueError(f"report outputs: {o.rule}.{o.key} declared twice")
        seen.add((o.rule, o.key))
        if o.category is not None and o.category.lower() in RESERVED_TARGETS:
            raise ValueError(f"report category {o.category!r} clashes with Snakemake's report")


_check()


def outputs(rule: str) -> list[ReportOutput]:
    """The entries of ``rule`` in declaration order.

    Raises:
        ValueError: an unknown rule, naming the known ones.
    """
    out = [o for o in OUTPUTS if o.rule == rule]
    if not out:
        raise ValueError(f"no report outputs of rule {rule!r}; known: {', '.join(RULES)}")
    return out


def entry(rule: str, key: str | None = None) -> ReportOutput:
    """The entry ``key`` of ``rule`` (None: its only output)."""
    for o in outputs(rule):
        if o.key == key:
            return o
    keys = [o.key for o in outputs(rule)]
    raise ValueError(f"rule {rule!r} has no output {key!r}; outputs: {keys}")


def targets(rule: str, **values: list[str]) -> list[str]:
    """Every path of ``rule`` for each combination of ``values`` (``dataset=[...]``), in the
    table's order: what ``rule all`` requests of the rule."""
    out = []
    for o in outputs(rule):
        combos: list[dict[str, str]] = [{}]
        for name in sorted(o.fields()):
            if name not in values:
                raise ValueError(f"{o.rule}: no values for {{{name}}} of {o.path}")
            combos = [{**c, name: v} for c in combos for v in values[name]]
        out.extend(_fill(o.path, c) for c in combos)
    return out


def caption_files(root: str | Path = ".") -> list[Path]:
    """The caption files the table names, under ``root`` (the repository)."""
    names = sorted({o.caption for o in OUTPUTS if o.caption})
    return [Path(root) / CAPTION_DIR / n for n in names]

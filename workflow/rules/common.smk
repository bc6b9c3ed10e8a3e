# Input functions and wildcard constraints; the logic lives in segbench.smk / segbench.config.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from segbench import paths
from segbench.config import all_fractions
from segbench.reporting import search as _search
from segbench.smk import (
    alternation,
    cached_search_configs,
    canonical,
    dataset_include_background,
    prepare_config,
    run_paths,
    run_spec,
    build_wildcard_constraints,
)

RUNS = prepare_config(config)
DATASETS = sorted({r.dataset for r in RUNS})
SYNTHETIC = [d for d in DATASETS if config["datasets"][d]["source"] == "synthetic"]
ENV = "../../envs/segbench.yaml"
FOLDS = config.get("run_folds") or list(range(config["folds"]))
# Random hyper-parameter search (grid blocks with `search`): derived loss key -> configuration.
SEARCH = cached_search_configs(config)
SEARCH_RUNS = [r for r in RUNS if r.loss in SEARCH]
# The tidy table the tables and figures read: with a search, the kept configurations only.
TABLE_TIDY = _search.SELECTED_TIDY if SEARCH_RUNS else paths.TIDY_TABLE


wildcard_constraints:
    **build_wildcard_constraints(config, RUNS),


def get_final_output():
    return [
        paths.TIDY_TABLE,
        *expand(
            "results/tables/{dataset}_table.{ext}",
            dataset=DATASETS,
            ext=["csv", "md", "tex"],
        ),
        "results/figures/miou_vs_fraction.png",
        *get_report_outputs(),
        *get_search_outputs(),
    ]


def get_search_outputs():
    if not SEARCH_RUNS:
        return []
    return [_search.SELECTION_TABLE, _search.SELECTION_MD, _search.SELECTED_TIDY]


def get_search_run_files(wildcards):
    return run_paths(SEARCH_RUNS, "run")


def get_search_keep():
    """Base loss key -> configurations kept (check_study: one value per loss)."""
    return {c.loss: c.keep for c in SEARCH.values()}


def get_synthetic_params(wildcards):
    entry = config["datasets"][wildcards.dataset]
    return canonical(
        {
            "generator": entry.get("generator", wildcards.dataset),
            "n": entry.get("n", 40),
            "size": entry.get("size", 64),
            "seed": entry.get("seed", 0),
            "params": entry.get("params", {}),
        }
    )


def get_split_params(wildcards):
    return {
        "folds": config["datasets"][wildcards.dataset].get("folds", config["folds"]),
        "seed": config["split_seed"],
        "val_fraction": config["datasets"][wildcards.dataset].get(
            "val_fraction", config["val_fraction"]
        ),
        "fractions": all_fractions(config, wildcards.dataset),
    }


def get_run_spec(wildcards):
    return run_spec(config, wildcards)


def get_pack_specs(wildcards):
    return [run_spec(config, wildcards, fold=fold) for fold in FOLDS]


def get_evaluation(wildcards):
    ev = dict(config["evaluation"])
    ev["include_background"] = dataset_include_background(config, wildcards.dataset)
    return canonical(ev)


def get_all_metrics(wildcards):
    return run_paths(RUNS, "metrics")


# ---------------------------------------------------------------------------------------------
# Reporting inputs (workflow/rules/report.smk; owned with segbench.reporting). Only get_*
# functions and the constants they need live here.
from segbench.reporting.figures import lambda_sweeps as _lambda_sweeps
from segbench.reporting.qualitative import pair_run_files as _pair_run_files
from segbench.reporting.qualitative import resolve_pair as _resolve_pair

REPORT = config["report"]
STAT_TABLES = ["summary", "paired_wilcoxon", "friedman"]


def get_qualitative_pair(dataset):
    """The two losses of the qualitative panel of ``dataset`` (None: no shared cell)."""
    return _resolve_pair(
        RUNS, dataset, REPORT.get("qualitative_pair"), list(config["losses"])
    )


def get_qualitative_datasets():
    return [d for d in DATASETS if get_qualitative_pair(d) is not None]


def get_lambda_sweeps():
    """Loss families of the study run at >= 2 values of `lam` (paper 003 Fig. 3)."""
    used = sorted({r.loss for r in RUNS if r.loss not in SEARCH})
    return _lambda_sweeps({k: config["losses"][k] for k in used})


def get_analytic_figures():
    return expand(
        "results/figures/analytic/{figure}.png",
        figure=REPORT.get("analytic_figures", []),
    )


def get_report_outputs():
    """Every table and figure of the reporting stage (added to rule all)."""
    out = [
        *expand(
            "results/tables/{dataset}_metrics.{ext}",
            dataset=DATASETS,
            ext=["csv", "md", "tex"],
        ),
        *expand("results/tables/{name}.{ext}", name=STAT_TABLES, ext=["csv", "md"]),
        *expand(
            "results/tables/{name}.{ext}",
            name=["published", "claims"],
            ext=["csv", "md"],
        ),
        "results/figures/cd_diagram.png",
        "results/figures/reliability.png",
        "results/figures/dice_violins.png",
        *get_analytic_figures(),
        *expand(
            "results/figures/qualitative/{dataset}.png",
            dataset=get_qualitative_datasets(),
        ),
    ]
    if len(get_lambda_sweeps()):
        out.append("results/figures/lambda_ablation.png")
    return out


def get_published_input(wildcards):
    path = REPORT.get("paper_results")
    return {"published": path} if path else {}


def get_claims_input(wildcards):
    path = REPORT.get("claims")
    return {"claims": path} if path else {}


def get_reliability_inputs(wildcards):
    return {
        "metrics": run_paths(RUNS, "metrics"),
        "reliability": run_paths(RUNS, "reliability"),
    }


def get_per_image_inputs(wildcards):
    return {
        "metrics": run_paths(RUNS, "metrics"),
        "per_image": run_paths(RUNS, "per_image"),
    }


def get_qualitative_inputs(wildcards):
    pair = get_qualitative_pair(wildcards.dataset)
    files = _pair_run_files(RUNS, wildcards.dataset, pair, paths.RUN_FILES)
    return {**files, "npz": paths.PREPARED_NPZ.format(dataset=wildcards.dataset)}


def get_qualitative_params(wildcards):
    return list(get_qualitative_pair(wildcards.dataset))


def retry_scaled(base):
    """A resource that grows with each attempt (--retries): base, 2 x base, 3 x base, ..."""
    return lambda wildcards, attempt: base * attempt

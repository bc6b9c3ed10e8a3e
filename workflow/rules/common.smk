# Input functions and wildcard constraints; the logic lives in segbench.smk / segbench.config.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from segbench import paths
from segbench.config import all_fractions, curve_runs, variant_configs
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
    split_params,
)
from segbench.rundir import warn_missing_runs

RUNS = prepare_config(config)
DATASETS = sorted({r.dataset for r in RUNS})
SYNTHETIC = [d for d in DATASETS if config["datasets"][d]["source"] == "synthetic"]
ENV = "../../envs/segbench.yaml"
FOLDS = config.get("run_folds") or list(range(config["folds"]))
# Random hyper-parameter search (grid blocks with `search`): derived loss key -> configuration.
SEARCH = cached_search_configs(config)
SEARCH_RUNS = [r for r in RUNS if r.loss in SEARCH]
# Grid blocks with `training` overrides: derived loss key {loss}~{tag} -> base loss, overrides.
VARIANTS = variant_configs(config)
# The tidy table the tables and figures read: with a search, the kept configurations only.
TABLE_TIDY = _search.SELECTED_TIDY if SEARCH_RUNS else paths.TIDY_TABLE


wildcard_constraints:
    **build_wildcard_constraints(config, RUNS),


def get_final_output():
    # Every run's files too: Snakemake rebuilds a missing file only when a job that needs it
    # runs, so a deleted run folder is redone by the default target (docs/reliability.md).
    runs = [f for key in paths.RUN_FILES for f in run_paths(RUNS, key)]
    return [paths.TIDY_TABLE, *get_report_outputs(), *runs]


if Path(paths.TIDY_TABLE).exists():
    warn_missing_runs(RUNS, paths.TIDY_TABLE)


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
    return split_params(config, wildcards.dataset)


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
# Reporting (workflow/rules/report.smk; owned with segbench.reporting). Every output path,
# caption and report category comes from segbench.reporting.outputs; only get_* functions, the
# report_output helper and the constants they need live here. Nothing imported here plots.
from segbench.reporting import outputs as _outputs
from segbench.reporting.pairs import pair_run_files as _pair_run_files
from segbench.reporting.pairs import resolve_pair as _resolve_pair
from segbench.reporting import sweeps as _sweeps

REPORT = config["report"]


def report_output(rule, key=None, **values):
    """Output ``key`` of ``rule`` from segbench.reporting.outputs, wrapped by Snakemake's
    report function when it is a report item; ``values`` fill template fields other than the
    rule's wildcards."""
    out = _outputs.entry(rule, key).fill(**values)
    if not out.in_report:
        return out.path
    return report(
        out.path,
        caption=out.caption_path,
        category=out.category,
        subcategory=out.subcategory,
        labels=dict(out.labels),
    )


def report_outputs(rule):
    """Every named output of ``rule`` (``output: **report_outputs(rule)``)."""
    return {o.key: report_output(rule, o.key) for o in _outputs.outputs(rule)}


def get_qualitative_pair(dataset):
    """The two losses of the qualitative panel of ``dataset`` (None: no shared cell)."""
    return _resolve_pair(
        RUNS, dataset, REPORT.get("qualitative_pair"), list(config["losses"])
    )


def get_qualitative_datasets():
    return [d for d in DATASETS if get_qualitative_pair(d) is not None]


def get_lambda_runs():
    """Runs of the sweep figures (lambda, alpha): every run outside a random search and
    outside the blocks with training overrides."""
    return [r for r in RUNS if r.loss not in SEARCH and r.loss not in VARIANTS]


def sweep_figure_requested(sweep):
    """Some loss family runs at >= 2 values of the parameter of ``sweep`` (paper 003 / 004)."""
    used = sorted({r.loss for r in get_lambda_runs()})
    return _sweeps.requests_sweep_figure({k: config["losses"][k] for k in used}, sweep)


def get_lambda_inputs(wildcards):
    return {"tidy": TABLE_TIDY, "runs": run_paths(get_lambda_runs(), "run")}


def get_sweep_reference(sweep):
    """Losses drawn as dashed lines beside ``sweep`` (those sharing a grid block with it)."""
    used = {r.loss for r in get_lambda_runs()}
    return _sweeps.reference_losses(config.get("grid"), config["losses"], used, sweep)


def run_optimizer(run):
    """The optimiser ``run`` trains with (a block's training overrides may name another)."""
    if run.loss in VARIANTS:
        own = VARIANTS[run.loss].training
    else:
        own = SEARCH[run.loss].training if run.loss in SEARCH else {}
    return own.get("optimizer", config["training"]["optimizer"])


def get_curve_runs():
    """Runs of the training-curves figure: those of the blocks with training overrides (paper
    002 Fig. 5's SGD and Adam blocks) and the study-training runs of their cells when the study
    has any, else every run."""
    return curve_runs(RUNS, VARIANTS)


def training_curves_requested():
    """The figure's runs train with two or more optimisers (paper 002 Fig. 5: SGD vs Adam)."""
    return len({run_optimizer(r) for r in get_curve_runs()}) >= 2


def get_history_inputs(wildcards):
    runs = get_curve_runs()
    return {"runs": run_paths(runs, "run"), "history": run_paths(runs, "history")}


def get_report_outputs():
    """Every table and figure of the reporting stage (added to rule all)."""
    targets = _outputs.targets
    return [
        *targets("paper_table", dataset=DATASETS),
        *targets("stats_tables"),
        *targets("published_table"),
        *targets("claims_table"),
        *targets("figures"),
        *(targets("lambda_ablation") if sweep_figure_requested("lambda") else []),
        *(targets("alpha_ablation") if sweep_figure_requested("alpha") else []),
        *(targets("training_curves") if training_curves_requested() else []),
        *targets("reliability_diagrams"),
        *targets("score_violins"),
        *targets("qualitative", dataset=get_qualitative_datasets()),
        *targets("analytic_figures", figure=REPORT.get("analytic_figures", [])),
        *(targets("search_selection") if SEARCH_RUNS else []),
    ]


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

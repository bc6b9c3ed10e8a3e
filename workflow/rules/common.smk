# Input functions and wildcard constraints; the logic lives in segbench.smk / segbench.config.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from segbench import paths
from segbench.config import all_fractions
from segbench.smk import (
    alternation,
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
    ]


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
        "folds": config["folds"],
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

# Tables, statistics and figures of a study, all rebuilt from the tidy table and the run
# folders; every output is a report() item of the Snakemake HTML report.


rule aggregate:
    input:
        get_all_metrics,
    output:
        report(
            paths.TIDY_TABLE,
            caption="../report/tidy.rst",
            category="Tables",
            subcategory="Tidy results",
            labels={"table": "tidy (run x class)"},
        ),
    log:
        "logs/aggregate/aggregate.log",
    group:
        "report"
    conda:
        ENV
    resources:
        mem_mb=retry_scaled(2000),
        runtime=retry_scaled(10),
    script:
        "../../scripts/aggregate.py"


if SEARCH_RUNS:

    # Paper 002: "the 5 best runs out of 25 (selected through validation dice scores)" (Table 1);
    # "Best out of 10 runs" (Table 2). segbench.reporting.search states the conventions.
    rule search_selection:
        input:
            tidy=paths.TIDY_TABLE,
            runs=get_search_run_files,
        output:
            csv=report(
                _search.SELECTION_TABLE,
                category="Tables",
                subcategory="Hyper-parameter search",
                labels={"table": "search selection", "format": "csv"},
            ),
            md=report(
                _search.SELECTION_MD,
                category="Tables",
                subcategory="Hyper-parameter search",
                labels={"table": "search selection", "format": "markdown"},
            ),
            tidy=_search.SELECTED_TIDY,
        log:
            "logs/report/search_selection.log",
        group:
            "report"
        conda:
            ENV
        resources:
            mem_mb=retry_scaled(2000),
            runtime=retry_scaled(10),
        params:
            keep=get_search_keep(),
            study=config["study"],
        script:
            "../../scripts/search_selection.py"


rule paper_table:
    input:
        TABLE_TIDY,
    output:
        csv=report(
            "results/tables/{dataset}_table.csv",
            caption="../report/paper_table.rst",
            category="Tables",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "table": "main metric", "format": "csv"},
        ),
        md=report(
            "results/tables/{dataset}_table.md",
            caption="../report/paper_table.rst",
            category="Tables",
            subcategory="{dataset}",
            labels={
                "dataset": "{dataset}",
                "table": "main metric",
                "format": "markdown",
            },
        ),
        tex=report(
            "results/tables/{dataset}_table.tex",
            caption="../report/paper_table.rst",
            category="Tables",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "table": "main metric", "format": "latex"},
        ),
        metrics_csv=report(
            "results/tables/{dataset}_metrics.csv",
            caption="../report/metrics_table.rst",
            category="Tables",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "table": "all metrics", "format": "csv"},
        ),
        metrics_md=report(
            "results/tables/{dataset}_metrics.md",
            caption="../report/metrics_table.rst",
            category="Tables",
            subcategory="{dataset}",
            labels={
                "dataset": "{dataset}",
                "table": "all metrics",
                "format": "markdown",
            },
        ),
        metrics_tex=report(
            "results/tables/{dataset}_metrics.tex",
            caption="../report/metrics_table.rst",
            category="Tables",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "table": "all metrics", "format": "latex"},
        ),
    log:
        "logs/paper_table/{dataset}.log",
    group:
        "report"
    conda:
        ENV
    resources:
        mem_mb=retry_scaled(2000),
        runtime=retry_scaled(10),
    params:
        metric=config["report"]["metric"],
        scale=config["report"]["scale"],
        replicate=config["report"]["replicate"],
        table_metrics=config["report"]["table_metrics"],
        study=config["study"],
        losses=list(config["losses"]),
        models=list(config["models"]),
    script:
        "../../scripts/paper_table.py"


rule stats_tables:
    input:
        TABLE_TIDY,
    output:
        summary_csv=report(
            "results/tables/summary.csv",
            caption="../report/summary.rst",
            category="Statistics",
            subcategory="Summary (mean, std, bootstrap CI)",
            labels={"table": "summary", "format": "csv"},
        ),
        summary_md=report(
            "results/tables/summary.md",
            caption="../report/summary.rst",
            category="Statistics",
            subcategory="Summary (mean, std, bootstrap CI)",
            labels={"table": "summary", "format": "markdown"},
        ),
        paired_csv=report(
            "results/tables/paired_wilcoxon.csv",
            caption="../report/paired.rst",
            category="Statistics",
            subcategory="Paired tests (Wilcoxon + Holm)",
            labels={"table": "paired tests", "format": "csv"},
        ),
        paired_md=report(
            "results/tables/paired_wilcoxon.md",
            caption="../report/paired.rst",
            category="Statistics",
            subcategory="Paired tests (Wilcoxon + Holm)",
            labels={"table": "paired tests", "format": "markdown"},
        ),
        friedman_csv=report(
            "results/tables/friedman.csv",
            caption="../report/friedman.rst",
            category="Statistics",
            subcategory="Ranking (Friedman + Nemenyi)",
            labels={"table": "average ranks", "format": "csv"},
        ),
        friedman_md=report(
            "results/tables/friedman.md",
            caption="../report/friedman.rst",
            category="Statistics",
            subcategory="Ranking (Friedman + Nemenyi)",
            labels={"table": "average ranks", "format": "markdown"},
        ),
        cd=report(
            "results/figures/cd_diagram.png",
            caption="../report/cd_diagram.rst",
            category="Statistics",
            subcategory="Ranking (Friedman + Nemenyi)",
            labels={"figure": "critical-difference diagram"},
        ),
    log:
        "logs/report/stats_tables.log",
    group:
        "report"
    conda:
        ENV
    resources:
        mem_mb=retry_scaled(2000),
        runtime=retry_scaled(20),
    params:
        metric=config["report"]["metric"],
        scale=config["report"]["scale"],
        replicate=config["report"]["replicate"],
        table_metrics=config["report"]["table_metrics"],
        alpha=config["report"]["alpha"],
        study=config["study"],
        losses=list(config["losses"]),
    script:
        "../../scripts/stats_tables.py"


rule published_table:
    input:
        unpack(get_published_input),
        tidy=TABLE_TIDY,
    output:
        csv=report(
            "results/tables/published.csv",
            caption="../report/published.rst",
            category="Paper comparison",
            subcategory="Reproduced vs published",
            labels={"table": "reproduced vs published", "format": "csv"},
        ),
        md=report(
            "results/tables/published.md",
            caption="../report/published.rst",
            category="Paper comparison",
            subcategory="Reproduced vs published",
            labels={"table": "reproduced vs published", "format": "markdown"},
        ),
    log:
        "logs/report/published_table.log",
    group:
        "report"
    conda:
        ENV
    resources:
        mem_mb=retry_scaled(2000),
        runtime=retry_scaled(10),
    params:
        replicate=config["report"]["replicate"],
        study=config["study"],
    script:
        "../../scripts/published_table.py"


rule claims_table:
    input:
        unpack(get_claims_input),
        tidy=TABLE_TIDY,
    output:
        csv=report(
            "results/tables/claims.csv",
            caption="../report/claims.rst",
            category="Paper comparison",
            subcategory="Claims",
            labels={"table": "claims", "format": "csv"},
        ),
        md=report(
            "results/tables/claims.md",
            caption="../report/claims.rst",
            category="Paper comparison",
            subcategory="Claims",
            labels={"table": "claims", "format": "markdown"},
        ),
    log:
        "logs/report/claims_table.log",
    group:
        "report"
    conda:
        ENV
    resources:
        mem_mb=retry_scaled(2000),
        runtime=retry_scaled(10),
    params:
        alpha=config["report"]["alpha"],
        study=config["study"],
    script:
        "../../scripts/claims_table.py"


rule figures:
    input:
        TABLE_TIDY,
    output:
        report(
            "results/figures/miou_vs_fraction.png",
            caption="../report/miou_vs_fraction.rst",
            category="Figures",
            subcategory="Training fraction",
            labels={"figure": "metric vs training fraction"},
        ),
    log:
        "logs/figures/miou_vs_fraction.log",
    group:
        "report"
    conda:
        ENV
    resources:
        mem_mb=retry_scaled(2000),
        runtime=retry_scaled(10),
    params:
        metric=config["report"]["metric"],
        scale=config["report"]["scale"],
    script:
        "../../scripts/figures.py"


rule lambda_ablation:
    input:
        TABLE_TIDY,
    output:
        report(
            "results/figures/lambda_ablation.png",
            caption="../report/lambda_ablation.rst",
            category="Figures",
            subcategory="Lambda ablation",
            labels={"figure": "metric vs lambda"},
        ),
    log:
        "logs/figures/lambda_ablation.log",
    group:
        "report"
    conda:
        ENV
    resources:
        mem_mb=retry_scaled(2000),
        runtime=retry_scaled(10),
    params:
        metric=config["report"]["metric"],
        scale=config["report"]["scale"],
        losses=lambda wildcards: canonical(config["losses"]),
    script:
        "../../scripts/lambda_ablation.py"


rule reliability_diagrams:
    input:
        unpack(get_reliability_inputs),
    output:
        png=report(
            "results/figures/reliability.png",
            caption="../report/reliability.rst",
            category="Figures",
            subcategory="Calibration",
            labels={"figure": "reliability diagrams"},
        ),
        csv=report(
            "results/tables/reliability_pooled.csv",
            caption="../report/reliability.rst",
            category="Figures",
            subcategory="Calibration",
            labels={"figure": "pooled reliability bins (csv)"},
        ),
    log:
        "logs/figures/reliability.log",
    group:
        "report"
    conda:
        ENV
    resources:
        mem_mb=retry_scaled(2000),
        runtime=retry_scaled(10),
    params:
        losses=list(config["losses"]),
    script:
        "../../scripts/reliability.py"


rule score_violins:
    input:
        unpack(get_per_image_inputs),
    output:
        report(
            "results/figures/dice_violins.png",
            caption="../report/violins.rst",
            category="Figures",
            subcategory="Per-image distribution",
            labels={"figure": "DSC violin plots"},
        ),
    log:
        "logs/figures/dice_violins.log",
    group:
        "report"
    conda:
        ENV
    resources:
        mem_mb=retry_scaled(2000),
        runtime=retry_scaled(10),
    params:
        metric="dice",
        scale=config["report"]["scale"],
        losses=list(config["losses"]),
    script:
        "../../scripts/score_violins.py"


rule qualitative:
    input:
        unpack(get_qualitative_inputs),
    output:
        report(
            "results/figures/qualitative/{dataset}.png",
            caption="../report/qualitative.rst",
            category="Figures",
            subcategory="Qualitative",
            labels={"dataset": "{dataset}"},
        ),
    log:
        "logs/figures/qualitative/{dataset}.log",
    group:
        "report"
    conda:
        ENV
    resources:
        mem_mb=retry_scaled(4000),
        runtime=retry_scaled(20),
    params:
        pair=get_qualitative_params,
    script:
        "../../scripts/qualitative.py"


if config["report"]["analytic_figures"]:

    rule analytic_figures:
        output:
            [
                report(
                    path,
                    caption="../report/analytic.rst",
                    category="Figures",
                    subcategory="Analytic (from the loss implementations)",
                    labels={"figure": Path(path).stem},
                )
                for path in get_analytic_figures()
            ],
        log:
            "logs/figures/analytic.log",
        group:
            "report"
        conda:
            ENV
        resources:
            mem_mb=retry_scaled(2000),
            runtime=retry_scaled(10),
        script:
            "../../scripts/analytic_figures.py"

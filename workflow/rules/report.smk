# Tables, statistics and figures of a study, all rebuilt from the tidy table and the run
# folders; every output is an item of the Snakemake HTML report.


rule aggregate:
    input:
        get_all_metrics,
    output:
        report_output("aggregate"),
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
            **report_outputs("search_selection"),
        log:
            "logs/search_selection/search_selection.log",
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
        **report_outputs("paper_table"),
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
        **report_outputs("stats_tables"),
    log:
        "logs/stats_tables/stats_tables.log",
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
        **report_outputs("published_table"),
    log:
        "logs/published_table/published_table.log",
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
        **report_outputs("claims_table"),
    log:
        "logs/claims_table/claims_table.log",
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
        report_output("figures"),
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
        unpack(get_lambda_inputs),
    output:
        report_output("lambda_ablation"),
    log:
        "logs/lambda_ablation/lambda_ablation.log",
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
        "../../scripts/lambda_ablation.py"


rule alpha_ablation:
    input:
        unpack(get_lambda_inputs),
    output:
        report_output("alpha_ablation"),
    log:
        "logs/alpha_ablation/alpha_ablation.log",
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
        reference=get_sweep_reference("alpha"),
    script:
        "../../scripts/alpha_ablation.py"


rule training_curves:
    input:
        unpack(get_history_inputs),
    output:
        report_output("training_curves"),
    log:
        "logs/training_curves/training_curves.log",
    group:
        "report"
    conda:
        ENV
    resources:
        mem_mb=retry_scaled(2000),
        runtime=retry_scaled(10),
    params:
        losses=list(config["losses"]),
        scale=config["report"]["scale"],
    script:
        "../../scripts/training_curves.py"


rule reliability_diagrams:
    input:
        unpack(get_reliability_inputs),
    output:
        **report_outputs("reliability_diagrams"),
    log:
        "logs/reliability_diagrams/reliability.log",
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
        report_output("score_violins"),
    log:
        "logs/score_violins/dice_violins.log",
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
        report_output("qualitative"),
    log:
        "logs/qualitative/{dataset}.log",
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
                report_output("analytic_figures", figure=figure)
                for figure in config["report"]["analytic_figures"]
            ],
        log:
            "logs/analytic_figures/analytic.log",
        group:
            "report"
        conda:
            ENV
        resources:
            mem_mb=retry_scaled(2000),
            runtime=retry_scaled(10),
        script:
            "../../scripts/analytic_figures.py"

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
    conda:
        ENV
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../../scripts/aggregate.py"


rule paper_table:
    input:
        paths.TIDY_TABLE,
    output:
        csv=report(
            "results/tables/{dataset}_table.csv",
            caption="../report/paper_table.rst",
            category="Tables",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "format": "csv"},
        ),
        md=report(
            "results/tables/{dataset}_table.md",
            caption="../report/paper_table.rst",
            category="Tables",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "format": "markdown"},
        ),
        tex=report(
            "results/tables/{dataset}_table.tex",
            caption="../report/paper_table.rst",
            category="Tables",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "format": "latex"},
        ),
    log:
        "logs/paper_table/{dataset}.log",
    conda:
        ENV
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        metric=config["report"]["metric"],
        scale=config["report"]["scale"],
        study=config["study"],
        losses=list(config["losses"]),
        models=list(config["models"]),
    script:
        "../../scripts/paper_table.py"


rule figures:
    input:
        paths.TIDY_TABLE,
    output:
        report(
            "results/figures/miou_vs_fraction.png",
            caption="../report/miou_vs_fraction.rst",
            category="Figures",
            subcategory="Training fraction",
            labels={"figure": "mIoU vs training fraction"},
        ),
    log:
        "logs/figures/miou_vs_fraction.log",
    conda:
        ENV
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        metric=config["report"]["metric"],
        scale=config["report"]["scale"],
    script:
        "../../scripts/figures.py"

rule evaluate:
    input:
        probs=paths.RUN_FILES["probs"],
        run=paths.RUN_FILES["run"],
        npz=paths.PREPARED_NPZ,
    output:
        metrics=paths.RUN_FILES["metrics"],
        per_image=paths.RUN_FILES["per_image"],
        reliability=paths.RUN_DIR + "/reliability.csv",
    params:
        evaluation=get_evaluation,
    log:
        "logs/evaluate/{dataset}/{model}/{loss}/f{fraction}/s{seed}/k{fold}.log",
    benchmark:
        "results/benchmarks/evaluate/{dataset}/{model}/{loss}/f{fraction}/s{seed}/k{fold}.tsv"
    resources:
        mem_mb=config["resources"]["eval_mem_mb"],
        runtime=10,
    conda:
        ENV
    script:
        "../../scripts/evaluate.py"

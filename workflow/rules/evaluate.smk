rule evaluate:
    input:
        probs=paths.RUN_FILES["probs"],
        run=paths.RUN_FILES["run"],
        # not read, but checked against run.json's sha256: a changed file reruns this job,
        # which then names the damaged file (segbench.rundir.verify_outputs)
        best=paths.RUN_FILES["best"],
        history=paths.RUN_FILES["history"],
        npz=paths.PREPARED_NPZ,
    output:
        metrics=paths.RUN_FILES["metrics"],
        per_image=paths.RUN_FILES["per_image"],
        reliability=paths.RUN_FILES["reliability"],
    log:
        "logs/evaluate/{dataset}/{model}/{loss}/f{fraction}/s{seed}/k{fold}.log",
    benchmark:
        "results/benchmarks/evaluate/{dataset}/{model}/{loss}/f{fraction}/s{seed}/k{fold}.tsv"
    group:
        "train"
    conda:
        ENV
    resources:
        mem_mb=retry_scaled(config["resources"]["eval_mem_mb"]),
        runtime=retry_scaled(10),
    params:
        evaluation=get_evaluation,
    script:
        "../../scripts/evaluate.py"

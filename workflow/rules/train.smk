rule train:
    input:
        npz=paths.PREPARED_NPZ,
        meta=paths.PREPARED_JSON,
        splits=paths.SPLITS,
    output:
        best=paths.RUN_FILES["best"],
        history=paths.RUN_FILES["history"],
        probs=paths.RUN_FILES["probs"],
        run=paths.RUN_FILES["run"],
    log:
        "logs/train/{dataset}/{model}/{loss}/f{fraction}/s{seed}/k{fold}.log",
    benchmark:
        "results/benchmarks/train/{dataset}/{model}/{loss}/f{fraction}/s{seed}/k{fold}.tsv"
    conda:
        ENV
    threads: config["training"]["threads"]
    resources:
        mem_mb=config["resources"]["train_mem_mb"],
        runtime=config["resources"]["train_runtime"],
        gpu=config["resources"]["train_gpu"],
    params:
        spec=get_run_spec,
    script:
        "../../scripts/train.py"

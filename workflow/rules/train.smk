if config["training"]["pack"] == "folds":

    # One job trains every fold of a (dataset, model, loss, fraction, seed) cell in one process
    # (one import, one dataset load, one CUDA context); each run still gets its own folder.
    rule train_pack:
        input:
            npz=paths.PREPARED_NPZ,
            meta=paths.PREPARED_JSON,
            splits=paths.SPLITS,
        output:
            best=expand(paths.RUN_FILES["best"], fold=FOLDS, allow_missing=True),
            history=expand(paths.RUN_FILES["history"], fold=FOLDS, allow_missing=True),
            probs=expand(paths.RUN_FILES["probs"], fold=FOLDS, allow_missing=True),
            run=expand(paths.RUN_FILES["run"], fold=FOLDS, allow_missing=True),
        log:
            "logs/train_pack/{dataset}/{model}/{loss}/f{fraction}/s{seed}/pack.log",
        benchmark:
            "results/benchmarks/train/{dataset}/{model}/{loss}/f{fraction}/s{seed}/pack.tsv"
        group:
            "train"
        conda:
            ENV
        threads: config["training"]["threads"]
        resources:
            mem_mb=retry_scaled(config["resources"]["train_mem_mb"]),
            runtime=retry_scaled(config["resources"]["train_runtime"] * len(FOLDS)),
            gpu=config["resources"]["train_gpu"],
        params:
            specs=get_pack_specs,
        script:
            "../../scripts/train_pack.py"

else:

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
        group:
            "train"
        conda:
            ENV
        threads: config["training"]["threads"]
        resources:
            mem_mb=retry_scaled(config["resources"]["train_mem_mb"]),
            runtime=retry_scaled(config["resources"]["train_runtime"]),
            gpu=config["resources"]["train_gpu"],
        params:
            spec=get_run_spec,
        script:
            "../../scripts/train.py"

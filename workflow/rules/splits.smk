rule splits:
    input:
        npz=paths.PREPARED_NPZ,
    output:
        paths.SPLITS,
    log:
        "logs/splits/{dataset}.log",
    group:
        "data"
    conda:
        ENV
    resources:
        mem_mb=retry_scaled(2000),
        runtime=retry_scaled(5),
    params:
        spec=get_split_params,
    script:
        "../../scripts/make_splits.py"

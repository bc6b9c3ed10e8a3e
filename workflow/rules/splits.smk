rule splits:
    input:
        npz=paths.PREPARED_NPZ,
    output:
        paths.SPLITS,
    log:
        "logs/splits/{dataset}.log",
    conda:
        ENV
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        spec=get_split_params,
    script:
        "../../scripts/make_splits.py"

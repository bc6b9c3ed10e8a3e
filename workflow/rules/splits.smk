rule splits:
    input:
        npz=paths.PREPARED_NPZ,
    output:
        paths.SPLITS,
    params:
        spec=get_split_params,
    log:
        "logs/splits/{dataset}.log",
    resources:
        mem_mb=2000,
        runtime=5,
    conda:
        ENV
    script:
        "../../scripts/make_splits.py"

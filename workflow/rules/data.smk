rule prepare_synthetic:
    output:
        npz=paths.PREPARED_NPZ,
        meta=paths.PREPARED_JSON,
    params:
        spec=get_synthetic_params,
    log:
        "logs/prepare_synthetic/{dataset}.log",
    wildcard_constraints:
        dataset=alternation(SYNTHETIC) if SYNTHETIC else "^$",
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        ENV
    script:
        "../../scripts/prepare_synthetic.py"

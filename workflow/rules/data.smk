rule prepare_synthetic:
    output:
        npz=paths.PREPARED_NPZ,
        meta=paths.PREPARED_JSON,
    log:
        "logs/prepare_synthetic/{dataset}.log",
    wildcard_constraints:
        dataset=alternation(SYNTHETIC),
    group:
        "data"
    conda:
        ENV
    resources:
        mem_mb=retry_scaled(2000),
        runtime=retry_scaled(10),
    params:
        spec=get_synthetic_params,
    script:
        "../../scripts/prepare_synthetic.py"


# Real datasets (config/datasets.yaml): download -> verify -> extract -> prepare.
include: "download.smk"

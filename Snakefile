# segbench: re-run published segmentation-loss studies end to end.
# prepare dataset -> splits -> train -> evaluate -> aggregate -> tables + figures -> report
from snakemake.utils import min_version, validate

min_version("9.0")


# The default study, unless a study is given with --configfile (a study replaces the default
# instead of being merged into it).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/splits.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        get_final_output(),

# segbench: re-run published segmentation-loss studies end to end.
# prepare dataset -> splits -> train -> evaluate -> aggregate -> tables + figures -> report
import sys
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from segbench.config import check_configfiles, check_device, check_registry
from segbench.config import exit_on_error as config_check

# First of all, re-read the config files strictly: Snakemake's loader keeps the last of two
# equal keys, runs YTE templates and takes a target written after --configfile for a config file.
config_check(
    check_configfiles, workflow.overwrite_configfiles or ["config/config.yaml"]
)


# The default study, unless a study is given with --configfile (a study replaces the default
# instead of being merged into it).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")
config_check(check_registry, config)


onstart:
    # Jobs are about to run (not a dry run or a report); when they run on this machine (no
    # cluster submission), training.device: cuda must find a GPU here.
    if workflow.local_exec:
        config_check(check_device, config)


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

# synthvad: synthetic training data for video anomaly detection, as one cached DAG.
# Stages live in workflow/rules/*.smk; the code they call in workflow/synthvad/.
from snakemake.utils import min_version

min_version("9.0")


# --configfile replaces the demo config instead of being merged into it (a benchmark
# config must not inherit the demo's experiments); --config alone still extends it.
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


wildcard_constraints:
    clip_id="[a-z0-9_]+-[a-z0-9_-]+",
    experiment="|".join(EXPERIMENTS),


include: "workflow/rules/data.smk"
include: "workflow/rules/describe.smk"
include: "workflow/rules/retrieve.smk"
include: "workflow/rules/refine.smk"
include: "workflow/rules/synthesize.smk"
include: "workflow/rules/filter.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/captions.smk"
include: "workflow/rules/quality.smk"
include: "workflow/rules/detect.smk"


rule all:
    input:
        all_outputs(),
    default_target: True

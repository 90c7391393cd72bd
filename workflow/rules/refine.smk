# Stage 3: one prompt per planned clip (PA-VAD refinement by template or a VLM,
# GV-VAD descriptions).
from synthvad.llm.settings import answer_params


rule refine:
    input:
        unpack(refine_inputs),
    output:
        f"{R}/prompts.parquet",
    params:
        # Without the VLM connection keys: they do not change answers (answer_params).
        config=canonical(answer_params(config["refine"])),
        methods=METHODS,
        clip_ids=CLIPS,
    log:
        f"{LOGS}/refine.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=60,
    conda:
        "../../envs/llm.yaml"
    script:
        STAGE

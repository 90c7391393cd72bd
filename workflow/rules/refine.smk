# Stage 3: one prompt per planned clip (PA-VAD refinement, GV-VAD descriptions).


rule refine:
    input:
        unpack(refine_inputs),
    output:
        f"{R}/prompts.parquet",
    params:
        template_phrases=config["refine"]["template_phrases"],
        methods=METHODS,
        clip_ids=CLIPS,
    log:
        f"{LOGS}/refine.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    conda:
        "../../envs/core.yaml"
    script:
        STAGE

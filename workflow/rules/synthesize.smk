# Stage 4: one job per synthetic clip.


rule synthesize:
    input:
        unpack(synthesis_inputs),
    output:
        video=f"{R}/synthetic/{GENERATOR}/{{clip_id}}.mp4",
        sidecar=f"{R}/synthetic/{GENERATOR}/{{clip_id}}.json",
    params:
        config=sub_config("synthesize", "seed"),
    log:
        f"{LOGS}/synthesize/{{clip_id}}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    conda:
        "../../envs/core.yaml"
    script:
        STAGE

# Stage 5: score and filter every synthetic clip.


rule filter:
    input:
        videos=[clip_video(c) for c in CLIPS],
    output:
        f"{R}/filtered.parquet",
    params:
        config=sub_config("filter", "clip", "seed"),
    log:
        f"{LOGS}/filter.log",
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/torch.yaml"
    script:
        STAGE

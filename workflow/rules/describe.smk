# Stage 1: paired abnormal/normal descriptions (GV-VAD).


rule describe:
    output:
        f"{R}/descriptions.parquet",
    params:
        config=sub_config("describe", "classes", "seed"),
    log:
        f"{LOGS}/describe.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    conda:
        "../../envs/core.yaml"
    script:
        STAGE

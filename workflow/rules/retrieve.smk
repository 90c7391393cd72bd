# Stage 2: CLIP retrieval of class-relevant initial images (PA-VAD).


rule retrieve:
    input:
        index=f"{R}/index.parquet",
    output:
        table=f"{R}/init_images.parquet",
        images=directory(f"{R}/init_images"),
    params:
        config=sub_config("retrieve", "classes", "clip", "seed"),
    log:
        f"{LOGS}/retrieve.log",
    benchmark:
        f"{BENCH}/retrieve.tsv",
    threads: 2
    resources:
        mem_mb=grows(4000),
        runtime=grows(60),
    conda:
        "../../envs/torch.yaml"
    script:
        STAGE

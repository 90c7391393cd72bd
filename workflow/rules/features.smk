# Stage 6: segment features of real and kept synthetic videos into parquet shards.


rule features_real:
    input:
        index=f"{R}/index.parquet",
    output:
        f"{R}/features/{EXTRACTOR}/part-real.parquet",
    params:
        config=sub_config("clip", "features", "segments", "seed"),
    log:
        f"{LOGS}/features_real.log",
    threads: 2
    resources:
        mem_mb=4000,
        runtime=120,
    conda:
        "../../envs/torch.yaml"
    script:
        STAGE


rule features_synthetic:
    input:
        filtered=f"{R}/filtered.parquet",
    output:
        f"{R}/features/{EXTRACTOR}/part-synthetic.parquet",
    params:
        config=sub_config("clip", "features", "segments", "seed"),
    log:
        f"{LOGS}/features_synthetic.log",
    threads: 2
    resources:
        mem_mb=4000,
        runtime=120,
    conda:
        "../../envs/torch.yaml"
    script:
        STAGE

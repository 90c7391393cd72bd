# Stage 6: segment features, scattered over chunk jobs and gathered into the two shards
# detect reads (part-real, part-synthetic). A gather checks the chunk set: one feature
# size, no video twice, every expected video with all its segments and crops.


# With imported features (data.features) rule import_features writes part-real instead.
if not FEATURES_IMPORTED:

    rule features_real_chunk:
        input:
            index=f"{R}/index.parquet",
        output:
            REAL_CHUNK,
        wildcard_constraints:
            chunk="[0-9]+",
        params:
            config=feature_jobs.params(config),
            n_chunks=len(REAL_CHUNKS),
        log:
            f"{LOGS}/features_real/{{chunk}}.log",
        benchmark:
            f"{BENCH}/features_real_chunk/{{chunk}}.tsv",
        threads: config["features"]["threads"]
        resources:
            gpu=feature_jobs.uses_gpu(config),
            mem_mb=grows(8000),
            runtime=grows(720),
        conda:
            "../../envs/torch.yaml"
        script:
            STAGE

    rule features_real:
        input:
            chunks=expand(REAL_CHUNK, chunk=REAL_CHUNKS),
            index=f"{R}/index.parquet",
        output:
            f"{FEATURES}/part-real.parquet",
        params:
            segments=canonical(config["segments"]),
        log:
            f"{LOGS}/features_real.log",
        benchmark:
            f"{BENCH}/features_real.tsv",
        threads: 1
        resources:
            mem_mb=grows(8000),
            runtime=grows(60),
        conda:
            "../../envs/core.yaml"
        script:
            STAGE


# Every clip of a chunk, kept or not: thresholds apply in the gather, never re-extracting.
rule features_synthetic_chunk:
    input:
        unpack(chunk_clips(CLIP_CHUNKS)),
    output:
        SYNTHETIC_CHUNK,
    wildcard_constraints:
        chunk="ranks-[0-9]+-[0-9]+",
    params:
        config=feature_jobs.params(config),
    log:
        f"{LOGS}/features_synthetic/{{chunk}}.log",
    benchmark:
        f"{BENCH}/features_synthetic_chunk/{{chunk}}.tsv",
    threads: config["features"]["threads"]
    resources:
        gpu=feature_jobs.uses_gpu(config),
        mem_mb=grows(4000),
        runtime=grows(120),
    conda:
        "../../envs/torch.yaml"
    script:
        STAGE


rule features_synthetic:
    input:
        chunks=expand(SYNTHETIC_CHUNK, chunk=list(CLIP_CHUNKS)),
        filtered=f"{R}/filtered.parquet",
    output:
        f"{FEATURES}/part-synthetic.parquet",
    params:
        segments=canonical(config["segments"]),
    log:
        f"{LOGS}/features_synthetic.log",
    benchmark:
        f"{BENCH}/features_synthetic.tsv",
    threads: 1
    resources:
        mem_mb=grows(4000),
        runtime=grows(30),
    conda:
        "../../envs/core.yaml"
    script:
        STAGE

# Stage 5: score the synthetic clips in chunk jobs, then apply the thresholds in one
# gather (so changing a threshold rescores nothing).


rule filter_chunk:
    input:
        unpack(chunk_clips(FILTER_CHUNKS)),
    output:
        FILTER_CHUNK,
    wildcard_constraints:
        chunk="ranks-[0-9]+-[0-9]+",
    params:
        config=canonical(
            {
                "clip": {k: config["clip"][k] for k in ("model", "pretrained")},
                "filter": {"frames": config["filter"]["frames"]},
                "seed": config["seed"],
            }
        ),
    log:
        f"{LOGS}/filter/{{chunk}}.log",
    benchmark:
        f"{BENCH}/filter_chunk/{{chunk}}.tsv",
    threads: 2
    resources:
        gpu=feature_jobs.uses_gpu(config),
        mem_mb=grows(4000),
        runtime=grows(60),
    conda:
        "../../envs/torch.yaml"
    script:
        STAGE


# A gather of the chunk verdicts, seconds of pandas: runs on the submitting machine.
localrules:
    filter,


rule filter:
    input:
        chunks=expand(FILTER_CHUNK, chunk=list(FILTER_CHUNKS)),
    output:
        f"{R}/filtered.parquet",
    params:
        thresholds=canonical(
            {k: config["filter"][k] for k in ("min_std", "min_motion", "min_clip_score")}
        ),
    log:
        f"{LOGS}/filter.log",
    benchmark:
        f"{BENCH}/filter.tsv",
    threads: 1
    resources:
        mem_mb=grows(2000),
        runtime=grows(10),
    conda:
        "../../envs/core.yaml"
    script:
        STAGE

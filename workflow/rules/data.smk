# Stage 0: the dataset -> index + ground truth. The generated demo, a user manifest, or
# a benchmark from its official files: its videos (Form A), or its pre-extracted features
# (Form B), which rule import_features also writes as the real feature shard.


if config["data"]["kind"] == "demo":

    rule demo_dataset:
        output:
            manifest=f"{R}/demo/manifest.csv",
            videos=directory(f"{R}/demo/videos"),
        params:
            demo=canonical(config["data"]["demo"]),
            seed=config["seed"],
        log:
            f"{LOGS}/demo_dataset.log",
        benchmark:
            f"{BENCH}/demo_dataset.tsv",
        threads: 4  # videos render in parallel (capped at --cores)
        resources:
            mem_mb=grows(2000),
            runtime=grows(30),
        conda:
            "../../envs/core.yaml"
        script:
            STAGE


if FEATURES_IMPORTED:

    rule import_features:
        input:
            **dataset_inputs(),
        output:
            index=f"{R}/index.parquet",
            ground_truth=f"{R}/ground_truth.parquet",
            rejected=f"{R}/index_rejected.parquet",
            shard=f"{R}/features/{EXTRACTOR}/part-real.parquet",
        params:
            data=canonical(config["data"]),
            segments=canonical(config["segments"]),
        log:
            f"{LOGS}/import_features.log",
        benchmark:
            f"{BENCH}/import_features.tsv",
        threads: 1
        resources:
            mem_mb=grows(4000),
            runtime=grows(120),
        conda:
            "../../envs/core.yaml"
        script:
            STAGE

else:

    # Seconds of pandas: a queued cluster job would wait longer than it runs.
    localrules:
        index,

    rule index:
        input:
            **dataset_inputs(),
        output:
            index=f"{R}/index.parquet",
            ground_truth=f"{R}/ground_truth.parquet",
            rejected=f"{R}/index_rejected.parquet",
        params:
            data=canonical(config["data"]),
        log:
            f"{LOGS}/index.log",
        benchmark:
            f"{BENCH}/index.tsv",
        threads: 1
        resources:
            mem_mb=grows(2000),
            runtime=grows(60),
        conda:
            "../../envs/core.yaml"
        script:
            STAGE

# Stage 0: the dataset (generated demo or a user manifest) -> index + ground truth.


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
        threads: 1
        resources:
            mem_mb=2000,
            runtime=30,
        conda:
            "../../envs/core.yaml"
        script:
            STAGE


rule index:
    input:
        manifest=manifest_path(),
    output:
        index=f"{R}/index.parquet",
        ground_truth=f"{R}/ground_truth.parquet",
        rejected=f"{R}/index_rejected.parquet",
    params:
        on_corrupt=config["data"]["on_corrupt"],
    log:
        f"{LOGS}/index.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    conda:
        "../../envs/core.yaml"
    script:
        STAGE

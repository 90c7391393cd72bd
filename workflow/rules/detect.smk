# Stage 7-8: train and evaluate one experiment's detector (all its seeds) per job, then
# compare the experiments. Per-seed results live inside each run's files (a seed column).


rule feature_store:
    input:
        f"{R}/features/{EXTRACTOR}/part-{{part}}.parquet",
    output:
        directory(f"{R}/features/{EXTRACTOR}/store-{{part}}"),
    wildcard_constraints:
        part="real|synthetic",
    params:
        dtype=config["detect"]["store_dtype"],
    log:
        f"{LOGS}/feature_store/{{part}}.log",
    benchmark:
        f"{BENCH}/feature_store/{{part}}.tsv",
    threads: 1
    resources:
        mem_mb=grows(4000),
        runtime=grows(60),
    conda:
        "../../envs/torch.yaml"
    script:
        STAGE


rule class_text_bank:
    output:
        f"{R}/class_text_bank.npy",
    params:
        config=sub_config("classes", "clip", "seed"),
    log:
        f"{LOGS}/class_text_bank.log",
    benchmark:
        f"{BENCH}/class_text_bank.tsv",
    threads: 1
    resources:
        mem_mb=grows(4000),
        runtime=grows(30),
    conda:
        "../../envs/torch.yaml"
    script:
        STAGE


rule detect:
    input:
        stores=experiment_stores,
        bank=experiment_text_bank,
        captions=experiment_captions,
        ground_truth=f"{R}/ground_truth.parquet",
        index=f"{R}/index.parquet",
    output:
        model=f"{R}/runs/{{experiment}}/model.safetensors",
        scores=f"{R}/runs/{{experiment}}/scores.parquet",
        metrics=f"{R}/runs/{{experiment}}/metrics.json",
        history=f"{R}/runs/{{experiment}}/history.csv",
    params:
        experiment=experiment_config,
        detector=detector_config,
        protocol=canonical(config["detect"]),
        segments=canonical(config["segments"]),
        seed=config["seed"],
    log:
        f"{LOGS}/detect/{{experiment}}.log",
    benchmark:
        f"{BENCH}/detect/{{experiment}}.tsv",
    threads: 1
    resources:
        mem_mb=grows(4000),
        runtime=grows(60),
    conda:
        "../../envs/torch.yaml"
    script:
        STAGE


rule report:
    input:
        unpack(synthetic_metrics),
        metrics=expand(f"{R}/runs/{{experiment}}/metrics.json", experiment=EXPERIMENTS),
        scores=expand(f"{R}/runs/{{experiment}}/scores.parquet", experiment=EXPERIMENTS),
        histories=expand(f"{R}/runs/{{experiment}}/history.csv", experiment=EXPERIMENTS),
        index=f"{R}/index.parquet",
        ground_truth=f"{R}/ground_truth.parquet",
        rejected=f"{R}/index_rejected.parquet",
    output:
        table_csv=f"{R}/report/summary.csv",
        table_md=report(
            f"{R}/report/summary.md",
            caption="../report/summary.rst",
            category="Detection",
            labels={"table": "experiments (Markdown)"},
        ),
        table_html=report(
            f"{R}/report/summary.html",
            caption="../report/summary.rst",
            category="Detection",
            labels={"table": "experiments (sortable)"},
        ),
        # The landing page's body: workflow.rst includes it.
        landing=f"{R}/report/landing.html",
        runtimes=report(
            f"{R}/report/runtimes.html",
            caption="../report/runtimes.rst",
            category="Workflow",
            labels={"table": "runtimes by rule"},
        ),
        detection=report(
            directory(f"{R}/report/detection"),
            patterns=["{figure}.png"],
            caption="../report/detection.rst",
            category="Detection",
            labels={"figure": "{figure}"},
        ),
        plots=report(
            directory(f"{R}/report/plots"),
            patterns=["{kind}__{cls}__{video}.png"],
            caption="../report/plots.rst",
            category="Scores per test video",
            subcategory="{kind} videos",
            labels={"class": "{cls}", "video": "{video}"},
        ),
    params:
        experiments=EXPERIMENTS,
        warnings=report_warnings(),
        # Read, not inputs: a missing benchmark file must not rerun its job.
        benchmarks=BENCH,
    log:
        f"{LOGS}/report.log",
    benchmark:
        f"{BENCH}/report.tsv",
    threads: 2  # the per-video plots are drawn by this many processes
    resources:
        mem_mb=grows(2000),
        runtime=grows(30),
    conda:
        "../../envs/core.yaml"
    script:
        STAGE

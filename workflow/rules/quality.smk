# What the synthetic clips look like to the detector and to a viewer: the real-vs-pseudo
# feature gap (PA-VAD Table 1 and a PCA) from the feature stores, and the generation
# quality (PA-VAD Table 3: FID, KID on frames, FVD, KVD on I3D clips) from the videos.
# Both only when some experiment trains on made clips; the report shows them.

if METHODS:

    rule domain_gap:
        input:
            stores=[f"{FEATURES}/store-real", f"{FEATURES}/store-synthetic"],
        output:
            json=f"{R}/metrics/domain_gap.json",
            plot=report(
                f"{R}/report/domain_gap.png",
                caption="../report/domain_gap.rst",
                category="Synthetic data",
            ),
        params:
            seed=config["seed"],
        log:
            f"{LOGS}/domain_gap.log",
        benchmark:
            f"{BENCH}/domain_gap.tsv",
        threads: 1
        resources:
            mem_mb=grows(4000),
            runtime=grows(60),
        conda:
            "../../envs/torch.yaml"
        script:
            STAGE

if METHODS and config["quality"]["enabled"]:

    rule generation_quality:
        input:
            index=f"{R}/index.parquet",
            filtered=f"{R}/filtered.parquet",
            clips=[clip_video(c) for c in CLIPS],
        output:
            f"{R}/metrics/generation.json",
        params:
            # device and batch size decide how, not what: not rule params.
            config=canonical({k: v for k, v in config["quality"].items() if k not in ("device", "batch_size")}),
            seed=config["seed"],
        log:
            f"{LOGS}/generation_quality.log",
        benchmark:
            f"{BENCH}/generation_quality.tsv",
        threads: 2
        resources:
            gpu=int(str(config["quality"]["device"]).startswith("cuda")),
            mem_mb=grows(8000),
            runtime=grows(120),
        conda:
            "../../envs/torch.yaml"
        script:
            STAGE


if METHODS:

    rule gallery:
        input:
            unpack(gallery_inputs),
        output:
            html=report(
                f"{R}/report/gallery.html",
                caption="../report/gallery.rst",
                category="Synthetic data",
                labels={"figure": "clip gallery"},
            ),
            histograms=report(
                f"{R}/report/filter_scores.png",
                caption="../report/filter_scores.rst",
                category="Synthetic data",
                labels={"figure": "filter scores"},
            ),
            # A few cards for the report's landing page.
            preview=f"{R}/report/gallery_preview.html",
        params:
            thresholds=sub_config("filter"),
            report=config["report"],
        log:
            f"{LOGS}/gallery.log",
        benchmark:
            f"{BENCH}/gallery.tsv",
        threads: 2
        resources:
            mem_mb=grows(2000),
            runtime=grows(30),
        conda:
            "../../envs/core.yaml"
        script:
            STAGE

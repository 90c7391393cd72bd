"""The report at UCF-Crime scale: build time and size of `snakemake --report`.

Writes a fixture of fake outputs shaped like a UCF-Crime run: the 290 test videos with
their real frame counts, classes and anomaly intervals (shared/data annotations), frame
scores of `--experiments` experiments x `--seeds` seeds, their histories and metrics,
`--clips` synthetic clips (720x480, 49 frames: CogVideoX's output; `--distinct` encoded
files hard-linked under every clip name, since encoding is not what is measured), the
filter table and a chunk file with the frame strips the filter makes, prompts, retrieved
initial images, and a benchmark file per job. Then, in a
scratch Snakemake workflow whose two rules declare the same report items as the rules
`gallery` and `report` (category, patterns, labels) and call the same package functions:

- the `gallery` and `report` jobs (`snakemake --cores 2`), then
- `snakemake --report report.html` (the self-contained HTML a user opens),

each timed, with the size of report.html and the peak RSS of each job. The baseline, in
the same run, is the same build at `--baseline-fraction` of the videos and clips; the
ratio says how the build scales. Targets (issue 17): under 60 s and under 150 MB.

    python benchmarks/report_scale.py --work /tmp/report-scale
    python benchmarks/report_scale.py --work /tmp/report-scale --clips 200 --experiments 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))
ANNOTATIONS = ROOT.parent / "shared" / "data" / "annotations" / "ucf-crime"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
TARGET_SECONDS, TARGET_MB = 60.0, 150.0
CLIP_SHAPE = (49, 480, 720)
SEGMENT = 16  # frames, height, width
THRESHOLDS = {"min_std": 4.0, "min_motion": 0.3, "min_clip_score": 0.2}
RULES = ["describe", "retrieve", "refine", "synthesize", "filter_chunk", "filter",
         "features_real_chunk", "features_synthetic_chunk", "feature_store", "detect"]  # fmt: skip

SNAKEFILE = """
import sys
sys.path.insert(0, {package!r})
import pandas as pd
from pathlib import Path

R = "results/ucf"
EXPERIMENTS = {experiments!r}


rule all:
    input:
        f"{{R}}/report/summary.csv",


rule gallery:
    input:
        filtered=f"{{R}}/filtered.parquet",
        chunk=f"{{R}}/filter/chunk.parquet",
        prompts=f"{{R}}/prompts.parquet",
        init_table=f"{{R}}/init_images.parquet",
        init_dir=f"{{R}}/init_images",
    output:
        html=report(f"{{R}}/report/gallery.html", category="Synthetic data",
                    labels={{"figure": "clip gallery"}}),
        histograms=report(f"{{R}}/report/filter_scores.png", category="Synthetic data",
                          labels={{"figure": "filter scores"}}),
        preview=f"{{R}}/report/gallery_preview.html",
    benchmark:
        "bench/gallery.tsv"
    run:
        from synthvad import gallery as stage
        filtered = pd.read_parquet(input.filtered)
        prompts = pd.read_parquet(input.prompts)
        init = pd.read_parquet(input.init_table)
        thresholds = {thresholds!r}
        strips = stage.read_strips([input.chunk])
        stage.filter_histograms(Path(output.histograms), filtered, thresholds)
        stage.write_gallery(Path(output.html), filtered, prompts, init, Path(input.init_dir),
                            thresholds, 24, strips)
        stage.write_preview(Path(output.preview), filtered, prompts, init,
                            Path(input.init_dir), thresholds, 2, strips)


rule report:
    input:
        metrics=expand(f"{{R}}/runs/{{{{e}}}}/metrics.json", e=EXPERIMENTS),
        scores=expand(f"{{R}}/runs/{{{{e}}}}/scores.parquet", e=EXPERIMENTS),
        histories=expand(f"{{R}}/runs/{{{{e}}}}/history.csv", e=EXPERIMENTS),
        index=f"{{R}}/index.parquet",
        ground_truth=f"{{R}}/ground_truth.parquet",
        preview=f"{{R}}/report/gallery_preview.html",
    output:
        table_csv=f"{{R}}/report/summary.csv",
        table_md=report(f"{{R}}/report/summary.md", category="Detection",
                        labels={{"table": "experiments (Markdown)"}}),
        table_html=report(f"{{R}}/report/summary.html", category="Detection",
                          labels={{"table": "experiments (sortable)"}}),
        landing=f"{{R}}/report/landing.html",
        runtimes=report(f"{{R}}/report/runtimes.html", category="Workflow",
                        labels={{"table": "runtimes by rule"}}),
        detection=report(directory(f"{{R}}/report/detection"), patterns=["{{figure}}.png"],
                         category="Detection", labels={{"figure": "{{figure}}"}}),
        plots=report(directory(f"{{R}}/report/plots"),
                     patterns=["{{kind}}__{{cls}}__{{video}}.png"],
                     category="Scores per test video", subcategory="{{kind}} videos",
                     labels={{"class": "{{cls}}", "video": "{{video}}"}}),
    benchmark:
        "bench/report.tsv"
    threads: 2
    run:
        from synthvad.report import make_report
        runs = {{e: {{"metrics": m, "scores": s, "history": h}} for e, m, s, h in zip(
            EXPERIMENTS, input.metrics, input.scores, input.histories)}}
        make_report(runs, input.index, input.ground_truth, output.table_csv,
                    output.table_md, output.plots, ["fake outputs at UCF-Crime scale"],
                    gallery_preview_path=input.preview, detection_dir=output.detection,
                    landing_html=output.landing, summary_html=output.table_html,
                    benchmarks_dir=f"{{R}}/benchmarks", runtimes_html=output.runtimes,
                    workers=threads)
"""


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="scratch folder (replaced)")
    parser.add_argument("--clips", type=int, default=1000)
    parser.add_argument("--experiments", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--distinct", type=int, default=40, help="clip files actually encoded")
    parser.add_argument("--baseline-fraction", type=float, default=0.1)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    return parser.parse_args()


def test_videos(fraction: float) -> pd.DataFrame:
    """video_id, n_frames, label, class of UCF-Crime's test split (every `1/fraction`-th)."""
    table = pd.read_csv(
        ANNOTATIONS / "UCF_Annotation_with_frame_counts.txt", sep=r"\s+", header=None
    )
    videos = pd.DataFrame(
        {
            "video_id": [Path(p).stem for p in table[0]],
            "split": "test",
            "n_frames": table[1].astype(int),
            "label": (table[2] != "Normal").astype(int),
            "class": [None if c == "Normal" else c for c in table[2]],
        }
    )
    step = max(1, round(1 / fraction))
    return videos.iloc[::step].reset_index(drop=True)


def ground_truth(videos: pd.DataFrame) -> pd.DataFrame:
    from synthvad.datasets.ucf_crime import parse_temporal

    temporal = parse_temporal(ANNOTATIONS / "Temporal_Anomaly_Annotation.txt")
    rows = [
        {"video_id": v, "start": s, "end": e}
        for v in videos["video_id"]
        for s, e in temporal.get(v, ("", []))[1]
    ]
    return pd.DataFrame(rows, columns=["video_id", "start", "end"])


def write_runs(run_dir: Path, videos: pd.DataFrame, gt: pd.DataFrame, n_exp: int, seeds: int):
    """Frame scores that see the anomalies a little (AUC about 0.6-0.8), per experiment;
    16-frame segments across video boundaries (a test for the fixture, not the figures)."""
    from synthvad.io.atomic import write_json, write_parquet
    from synthvad.metrics import summarize_seeds

    rng = np.random.default_rng(0)
    frames = np.concatenate([np.arange(n) for n in videos["n_frames"]])
    ids = np.repeat(videos["video_id"].to_numpy(), videos["n_frames"].to_numpy())
    labels = np.zeros(len(frames), dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(videos["n_frames"])[:-1]])
    offset = dict(zip(videos["video_id"], starts, strict=True))
    for row in gt.itertuples():
        labels[offset[row.video_id] + row.start : offset[row.video_id] + row.end] = 1
    names = [f"experiment_{i:02d}" for i in range(n_exp)]
    for i, name in enumerate(names):
        parts, per_seed = [], []
        for seed in range(seeds):
            # Constant over 16-frame segments, as the detect rule writes frame scores.
            noise = np.repeat(rng.normal(0, 1, len(frames) // SEGMENT + 1), SEGMENT)
            score = 1 / (1 + np.exp(-(noise[: len(frames)] + (0.3 + 0.1 * i) * labels)))
            parts.append(pd.DataFrame({"seed": seed, "video_id": ids, "frame": frames,
                                       "score": score.astype(np.float32), "label": labels}))  # fmt: skip
            per_seed.append({"seed": seed, "auc": 0.6 + 0.02 * i, "ap": 0.2, "best_epoch": 5,
                             "auc_abnormal_videos": 0.55, "false_alarm_rate": 0.1,
                             "n_frames": len(frames), "n_abnormal_frames": int(labels.sum()),
                             "n_videos": len(videos), "val_metric": "objective",
                             "alpha_final": 0.5, "n_val": 100})  # fmt: skip
        folder = run_dir / name
        write_parquet(pd.concat(parts, ignore_index=True), folder / "scores.parquet")
        write_json(
            {"experiment": name, "detector": "urdmu", "model": "urdmu", "real_abnormal": i == 0,
             "synthetic": [] if i == 0 else ["gvvad", "pavad"], "alpha": 0.5,
             "unsupervised": False, **summarize_seeds(per_seed)},
            folder / "metrics.json",
        )  # fmt: skip
        epochs = [{"seed": s, "epoch": e, "loss": 1 / e, "val_auc": 0.5 + 0.01 * e, "alpha": 0.5}
                  for s in range(seeds) for e in range(1, 51)]  # fmt: skip
        pd.DataFrame(epochs).to_csv(folder / "history.csv", index=False)
    return names


def write_clips(root: Path, n_clips: int, distinct: int, classes: list[str]) -> None:
    """filtered.parquet, prompts.parquet, init_images/ + .parquet and the clip files."""
    from PIL import Image

    from synthvad.io.video import write_video

    rng = np.random.default_rng(1)
    frames, height, width = CLIP_SHAPE
    y, x = np.mgrid[0:height, 0:width]
    encoded = root / "encoded"
    encoded.mkdir(parents=True)
    for k in range(distinct):
        video = np.stack(
            [np.stack([(x + 7 * i + 13 * k) % 256, (y + 3 * i) % 256, (x + y + 29 * k) % 256], -1)
             for i in range(frames)]
        ).astype(np.uint8)  # fmt: skip
        write_video(encoded / f"{k}.mp4", video, 8)
    init_dir = root / "init_images"
    init_dir.mkdir()
    init_rows = []
    for c, cls in enumerate(classes):
        for rank in range(4):
            name = f"{cls.lower()}_{rank:03d}.png"
            Image.new("RGB", (320, 240), (20 * c % 256, 60 * rank, 120)).save(init_dir / name)
            init_rows.append({"class": cls, "rank": rank, "video_id": f"Normal_{c}_{rank}",
                              "frame": 16 * rank, "scene": "0", "score": 0.3, "s_pos": 0.31,
                              "s_neg": 0.18, "image": f"results/ucf/init_images/{name}",
                              "clip_random_weights": False})  # fmt: skip
    pd.DataFrame(init_rows).to_parquet(root / "init_images.parquet", index=False)
    filtered, prompts = [], []
    for i in range(n_clips):
        method = "gvvad" if i % 2 else "pavad"
        cls = classes[(i // 2) % len(classes)]
        clip_id = f"{method}-{cls.lower()}-{i:04d}"
        path = root / "synthetic" / f"{clip_id}.mp4"
        path.parent.mkdir(exist_ok=True)
        os.link(encoded / f"{i % distinct}.mp4", path)
        motion, clip_score = float(rng.gamma(2, 2)), float(rng.uniform(0.05, 0.4))
        keep = motion >= THRESHOLDS["min_motion"] and clip_score >= THRESHOLDS["min_clip_score"]
        filtered.append({"clip_id": clip_id, "method": method, "class": cls, "label": 1,
                         "path": str(path), "decodable": True, "n_frames": frames,
                         "frame_std": 40.0, "motion": motion, "clip_score": clip_score,
                         "keep": keep, "reason": "ok" if keep else "text_mismatch"})  # fmt: skip
        prompts.append({"clip_id": clip_id, "method": method, "class": cls, "label": 1,
                        "prompt": f"CCTV footage, a street at night, {cls.lower()} happens "
                        "between two people near a parked car " * 2,
                        "init_image": init_rows[(i // 2) % len(init_rows)]["image"]
                        if method == "pavad" else None})  # fmt: skip
    pd.DataFrame(filtered).to_parquet(root / "filtered.parquet", index=False)
    # The filter's chunk file: its frame strips, made as the filter makes them.
    strips = [strip_of(encoded / f"{k}.mp4") for k in range(distinct)]
    chunk = pd.DataFrame(filtered).assign(strip=[strips[i % distinct] for i in range(n_clips)])
    (root / "filter").mkdir()
    chunk.to_parquet(root / "filter" / "chunk.parquet", index=False)
    pd.DataFrame(prompts).to_parquet(root / "prompts.parquet", index=False)


def strip_of(path: Path) -> bytes:
    """The frame strip the filter stores: from its 8 sampled frames."""
    from synthvad.filter import score_clip
    from synthvad.io.strips import evenly, strip_jpeg

    _, frames = score_clip(str(path), 8)
    return strip_jpeg(evenly(frames))


def write_job_benchmarks(folder: Path, n_jobs: int) -> None:
    """A benchmark file per job of a run this size (as Snakemake writes them)."""
    rng = np.random.default_rng(2)
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    for j in range(n_jobs):
        rule = RULES[j % len(RULES)]
        path = folder / rule / f"job_{j:05d}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        s = float(rng.gamma(2, 30))
        path.write_text(header + f"{s:.2f}\t0:00:00\t{rng.uniform(200, 4000):.1f}\t0\t0\t0\t0\t0"
                        f"\t0\t{0.9 * s:.2f}\n")  # fmt: skip


def build(work: Path, fraction: float, args: argparse.Namespace) -> dict:
    """The fixture at `fraction` of UCF-Crime's test videos and of --clips, then the build."""
    shutil.rmtree(work, ignore_errors=True)
    run_dir = work / "results" / "ucf"
    run_dir.mkdir(parents=True)
    videos = test_videos(fraction)
    gt = ground_truth(videos)
    videos.to_parquet(run_dir / "index.parquet", index=False)
    gt.to_parquet(run_dir / "ground_truth.parquet", index=False)
    names = write_runs(run_dir / "runs", videos, gt, args.experiments, args.seeds)
    classes = sorted(videos["class"].dropna().unique())
    n_clips = max(len(classes), round(args.clips * fraction))
    write_clips(run_dir, n_clips, min(args.distinct, n_clips), classes)
    write_job_benchmarks(run_dir / "benchmarks", n_clips + 2 * len(videos))
    (work / "Snakefile").write_text(
        SNAKEFILE.format(package=str(ROOT / "workflow"), experiments=names, thresholds=THRESHOLDS)
    )
    start = time.perf_counter()
    subprocess.run([*SNAKEMAKE, "--cores", "2", "--quiet", "all"], cwd=work, check=True)
    jobs_s = time.perf_counter() - start
    start = time.perf_counter()
    subprocess.run([*SNAKEMAKE, "--report", "report.html", "--quiet", "all"], cwd=work, check=True)
    report_s = time.perf_counter() - start
    bench = {rule: pd.read_csv(work / "bench" / f"{rule}.tsv", sep="\t").iloc[0]
             for rule in ("gallery", "report")}  # fmt: skip
    return {
        "test_videos": len(videos),
        "clips": n_clips,
        "experiments": len(names),
        "score_rows": int(videos["n_frames"].sum()) * args.seeds * len(names),
        "gallery_s": float(bench["gallery"]["s"]),
        "report_job_s": float(bench["report"]["s"]),
        "jobs_wall_s": jobs_s,
        "snakemake_report_s": report_s,
        "total_s": jobs_s + report_s,
        "report_mb": (work / "report.html").stat().st_size / 1e6,
        "gallery_mb": (run_dir / "report" / "gallery.html").stat().st_size / 1e6,
        "peak_rss_mb": max(float(b["max_rss"]) for b in bench.values()),
    }


def main() -> None:
    args = arguments()
    baseline = build(args.work / "baseline", args.baseline_fraction, args)
    full = build(args.work / "full", 1.0, args)
    for name, figures in (("baseline", baseline), ("full", full)):
        print(
            f"{name:8s} {figures['test_videos']:4d} test videos, {figures['clips']:5d} clips, "
            f"{figures['experiments']} experiments ({figures['score_rows'] / 1e6:.1f} M score "
            f"rows): gallery job {figures['gallery_s']:.1f} s, report job "
            f"{figures['report_job_s']:.1f} s, snakemake --report "
            f"{figures['snakemake_report_s']:.1f} s, total {figures['total_s']:.1f} s; "
            f"report.html {figures['report_mb']:.1f} MB (gallery {figures['gallery_mb']:.1f} "
            f"MB); peak RSS of a job {figures['peak_rss_mb']:.0f} MB"
        )
    print(
        f"full / baseline: time {full['total_s'] / baseline['total_s']:.2f}x, size "
        f"{full['report_mb'] / baseline['report_mb']:.2f}x; full / target: time "
        f"{full['total_s'] / TARGET_SECONDS:.2f} of {TARGET_SECONDS:.0f} s, size "
        f"{full['report_mb'] / TARGET_MB:.2f} of {TARGET_MB:.0f} MB"
    )
    if args.json:
        args.json.write_text(json.dumps({"baseline": baseline, "full": full}, indent=2))


if __name__ == "__main__":
    main()

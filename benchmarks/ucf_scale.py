"""UCF-Crime-sized training and scoring in bounded memory: peak RSS and steps/s.

Writes UCF-shaped random features (1,610 train + 290 test videos; test lengths are the
real ones, frames / 16 from UCF_Annotation_with_frame_counts.txt, train lengths are drawn
from them; labels from Anomaly_Train.txt and the test annotations; 10 crops; D = 1024)
as one feature shard, builds the feature store from it (the rule feature_store), trains
`urdmu` (schema defaults: the released sizes) for a few steps from the store and scores
the whole test split from it. Each phase runs in its own process, so its peak RSS is its
own. A subset of 100 + 100 training videos is also trained from an in-memory shard and
from its store, in the same run: the steps/s ratio of the two paths.

    python benchmarks/ucf_scale.py --work /tmp/ucf-scale            # about 19 GB of shard
    python benchmarks/ucf_scale.py --work /tmp/ucf-scale --fraction 0.05   # a quick look
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))
ANNOTATIONS = ROOT.parent / "shared" / "data" / "annotations" / "ucf-crime"
CROPS, DIM, SEGMENT = 10, 1024, 16
SUBSET = 100  # normal and abnormal training videos of the in-memory comparison


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB on Linux


def video_plan(fraction: float, seed: int = 0) -> pd.DataFrame:
    """video_id, split, label, segments of the UCF-shaped set."""
    test = pd.read_csv(
        ANNOTATIONS / "UCF_Annotation_with_frame_counts.txt", sep=r"\s+", header=None
    )
    train = pd.read_csv(ANNOTATIONS / "Anomaly_Train.txt", header=None)[0]
    rng = np.random.default_rng(seed)
    test_segments = np.ceil(test[1].to_numpy() / SEGMENT).astype(int)
    rows = [
        {"video_id": Path(p).stem, "split": "test", "label": int(c != "Normal"), "segments": int(t)}
        for p, c, t in zip(test[0], test[2], test_segments, strict=True)
    ]
    drawn = rng.choice(test_segments, size=len(train))
    rows += [
        {
            "video_id": Path(p).stem,
            "split": "train",
            "label": int("Normal" not in p),
            "segments": int(t),
        }
        for p, t in zip(train, drawn, strict=True)
    ]
    plan = pd.DataFrame(rows)
    if fraction < 1:
        plan = plan.groupby(["split", "label"]).sample(frac=fraction, random_state=seed)
    return plan.reset_index(drop=True)


def write_shard(plan: pd.DataFrame, path: Path, seed: int) -> None:
    from synthvad.io.shards import shard_writer

    rng = np.random.default_rng(seed)
    with shard_writer(path, DIM) as append:
        for v in plan.itertuples(index=False):
            n = v.segments * CROPS
            meta = pd.DataFrame(
                {
                    "video_id": v.video_id, "split": v.split, "source": "real", "method": None,
                    "label": v.label, "class": "Abnormal" if v.label else "Normal",
                    "segment": np.tile(np.arange(v.segments), CROPS), "n_frames": SEGMENT,
                    "crop": np.repeat(np.arange(CROPS), v.segments),
                }
            )  # fmt: skip
            append(meta, rng.standard_normal((n, DIM), dtype=np.float32))


def detector_cfg() -> dict:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from detect import detector_defaults

    return detector_defaults(["urdmu"])["urdmu"]


def phase_write(work: Path, fraction: float) -> dict:
    plan = video_plan(fraction)
    start = time.perf_counter()
    write_shard(plan, work / "part-real.parquet", seed=0)
    subset = plan[plan["split"] == "train"].groupby("label").head(SUBSET)
    write_shard(subset, work / "part-subset.parquet", seed=1)
    return {
        "videos": len(plan),
        "segments": int(plan["segments"].sum()),
        "longest": int(plan["segments"].max()),
        "shard_gb": (work / "part-real.parquet").stat().st_size / 2**30,
        "seconds": time.perf_counter() - start,
    }


def phase_store(work: Path, name: str, dtype: str) -> dict:
    from synthvad.detect.store import build_store

    start = time.perf_counter()
    build_store([str(work / f"part-{name}.parquet")], str(work / f"store-{name}"), dtype)
    size = sum(p.stat().st_size for p in (work / f"store-{name}").iterdir())
    return {
        "store_gb": size / 2**30,
        "seconds": time.perf_counter() - start,
        "peak_rss_gb": peak_rss_gb(),
    }


def phase_train(work: Path, source: str, steps: int, segments: int) -> dict:
    """Train urdmu from `source` (a shard: in memory; a store: read per video)."""
    import torch

    from synthvad.detect.data import TrainSet, average_crops, load_videos
    from synthvad.detect.registry import build_detector
    from synthvad.detect.train import Alpha, scaled_step_loss

    torch.set_num_threads(2)
    cfg = detector_cfg()
    start = time.perf_counter()
    videos = [v for v in average_crops(load_videos([str(work / source)])) if v.split == "train"]
    trainset = TrainSet(videos, segments, labelled=True, exact_length=True)
    build = time.perf_counter() - start
    torch.manual_seed(0)
    model = build_detector("urdmu", DIM, cfg).train()
    model.norm.fit_moments(*trainset.segment_moments())
    optimizer = torch.optim.Adam(model.parameters(), lr=float(cfg["lr"]))
    alpha, batch = Alpha(1.0, 0.5), int(cfg["batch_size"])
    normal = np.flatnonzero(trainset.video_labels == 0)
    abnormal = np.flatnonzero(trainset.video_labels == 1)
    rng = np.random.default_rng(0)
    times = []
    for _ in range(steps + 1):  # the first is a warm-up
        index = torch.from_numpy(np.r_[rng.choice(normal, batch), rng.choice(abnormal, batch)])
        t0 = time.perf_counter()
        loss, _ = scaled_step_loss(model.objective(trainset.batch(index, None)), alpha)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - t0)
    torch.save(model.state_dict(), work / f"urdmu-{source}.pt")
    return {
        "videos": len(videos),
        "trainset_gb": trainset.features.numel() * 4 / 2**30,
        "build_seconds": build,
        "steps_per_s": 1 / float(np.median(times[1:])),
        "peak_rss_gb": peak_rss_gb(),
    }


def phase_score(work: Path, source: str) -> dict:
    import torch

    from synthvad.detect.data import average_crops, load_videos
    from synthvad.detect.registry import build_detector
    from synthvad.detect.train import score_videos

    torch.set_num_threads(2)
    cfg = detector_cfg()
    test = [v for v in load_videos([str(work / source)]) if v.split == "test"]
    model = build_detector("urdmu", DIM, cfg)
    model.load_state_dict(torch.load(work / f"urdmu-{source}.pt"))
    start = time.perf_counter()
    scores = score_videos(model, average_crops(test), torch.device("cpu"), int(cfg["batch_size"]))
    return {
        "videos": len(test),
        "segments": int(sum(len(s) for s in scores)),
        "seconds": time.perf_counter() - start,
        "peak_rss_gb": peak_rss_gb(),
    }


def run_phase(work: Path, *args: str) -> dict:
    cmd = [sys.executable, __file__, "--work", str(work), "--phase", *args]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    print(f"{' '.join(args):>24}: {json.dumps(result)}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="scratch folder (about 40 GB)")
    parser.add_argument("--fraction", type=float, default=1.0, help="share of the videos")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps")
    parser.add_argument("--segments", type=int, default=64, help="detect.train_segments")
    parser.add_argument("--store-dtype", default="float32", choices=["float32", "float16"])
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--phase", nargs="+", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        kind, *rest = args.phase
        result = {
            "write": lambda: phase_write(args.work, float(rest[0])),
            "store": lambda: phase_store(args.work, rest[0], rest[1]),
            "train": lambda: phase_train(args.work, rest[0], int(rest[1]), int(rest[2])),
            "score": lambda: phase_score(args.work, rest[0]),
        }[kind]()
        print(json.dumps(result))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    figures = {"write": run_phase(args.work, "write", str(args.fraction))}
    for name in ("real", "subset"):
        figures[f"store_{name}"] = run_phase(args.work, "store", name, args.store_dtype)
    steps, segments = str(args.steps), str(args.segments)
    figures["train_subset_memory"] = run_phase(
        args.work, "train", "part-subset.parquet", steps, segments
    )  # noqa: E501
    figures["train_subset_store"] = run_phase(args.work, "train", "store-subset", steps, segments)
    figures["train_store"] = run_phase(args.work, "train", "store-real", steps, segments)
    figures["score_store"] = run_phase(args.work, "score", "store-real")
    ratio = (
        figures["train_subset_store"]["steps_per_s"] / figures["train_subset_memory"]["steps_per_s"]
    )  # noqa: E501
    figures["store_vs_memory_steps"] = ratio
    print(f"steps/s, store / in-memory (subset, same run): {ratio:.3f}")
    print(
        f"peak RSS: training {figures['train_store']['peak_rss_gb']:.2f} GB, "
        f"scoring {figures['score_store']['peak_rss_gb']:.2f} GB (target 3 GB each)"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()

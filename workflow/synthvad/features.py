"""Stage 6: open_clip image features of 16-frame segments into parquet shards."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from synthvad.io.shards import write_shard
from synthvad.io.video import probe, read_frames
from synthvad.segments import sample_indices, segment_bounds

log = logging.getLogger(__name__)

VIDEO_COLUMNS = ("video_id", "path", "split", "source", "method", "label", "class")


def segment_plan(
    n_frames: int, seg_cfg: dict[str, Any], per_segment: int
) -> tuple[list[tuple[int, int]], list[list[int]]]:
    """Segment bounds and, per segment, the frame indices sampled from it."""
    bounds = segment_bounds(n_frames, seg_cfg["length"], seg_cfg["keep_last_partial"])
    return bounds, [sample_indices(s, e, per_segment) for s, e in bounds]


def video_features(
    path: str, bundle: Any, seg_cfg: dict[str, Any], per_segment: int, batch_size: int
):
    """(bounds, [n_segments, D]): per segment, the mean embedding of its sampled frames."""
    bounds, samples = segment_plan(probe(path).n_frames, seg_cfg, per_segment)
    if not bounds:
        return bounds, None
    emb = bundle.encode_frames(read_frames(path, [i for s in samples for i in s]), batch_size)
    counts = np.array([len(s) for s in samples])
    owner = np.repeat(np.arange(len(bounds)), counts)
    sums = np.zeros((len(bounds), emb.shape[1]), np.float64)
    np.add.at(sums, owner, emb)
    return bounds, (sums / counts[:, None]).astype(np.float32)


def extract(videos: pd.DataFrame, config: dict[str, Any], out: str) -> None:
    from synthvad.models import load_clip

    bundle = load_clip(config["clip"], seed=config["seed"])
    per_segment = config["features"]["frames_per_segment"]
    metas, feats = [], []
    for rec in tqdm(videos.to_dict("records"), desc="features", unit="video"):
        bounds, f = video_features(
            rec["path"], bundle, config["segments"], per_segment, config["clip"]["batch_size"]
        )
        if f is None:
            log.warning("video %s is shorter than one segment; no features", rec["video_id"])
            continue
        for seg, (s, e) in enumerate(bounds):
            metas.append(
                {
                    **{k: rec[k] for k in VIDEO_COLUMNS if k != "path"},
                    "segment": seg,
                    "n_frames": e - s,
                    "crop": 0,
                }
            )
        feats.append(f)
    if not feats:
        raise ValueError(f"{out}: no video produced features")
    write_shard(pd.DataFrame(metas), np.concatenate(feats), out)
    log.info("%d videos, %d segments -> %s", len(feats), len(metas), out)


def real_videos(index_path: str) -> pd.DataFrame:
    df = pd.read_parquet(index_path)
    return df.assign(source="real", method=None)[list(VIDEO_COLUMNS)]


def synthetic_videos(filtered_path: str) -> pd.DataFrame:
    df = pd.read_parquet(filtered_path)
    kept = df[df["keep"]].rename(columns={"clip_id": "video_id"})
    return kept.assign(split="train", source="synthetic")[list(VIDEO_COLUMNS)]

"""Gather: check a set of chunk shards and join them into the one shard detect reads.

The set must be whole and consistent: one feature size, no video in two chunks, every
expected video present with exactly its segments (from the same segmentation as the
ground truth) for every crop, and the same crops for every video. An error names the
video and the chunk file.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from synthvad.io.shards import KEY_COLUMNS, read_shards, shard_writer
from synthvad.segments import segment_bounds

log = logging.getLogger(__name__)


class ShardSetError(ValueError):
    """A chunk shard set that is not whole or not consistent."""


def feature_dim(path: str) -> int:
    return pq.read_schema(path).field("feature").type.list_size


def check_video(
    video_id: str, rows: pd.DataFrame, n_frames: int, segments_cfg: Mapping[str, Any], n_crops: int
) -> None:
    """`rows` (sorted by crop, segment) hold segments 0..T-1 of each crop 0..n_crops-1,
    each covering the frames the segmentation gives it."""
    bounds = segment_bounds(n_frames, segments_cfg["length"], segments_cfg["keep_last_partial"])
    frames = np.array([end - start for start, end in bounds], dtype=np.int64)
    n_segments = len(bounds)
    ok = (
        len(rows) == n_crops * n_segments
        and (rows["crop"].to_numpy() == np.repeat(np.arange(n_crops), n_segments)).all()
        and (rows["segment"].to_numpy() == np.tile(np.arange(n_segments), n_crops)).all()
        and (rows["n_frames"].to_numpy() == np.tile(frames, n_crops)).all()
    )
    if not ok:
        crops = sorted(rows["crop"].unique().tolist())
        raise ShardSetError(
            f"video {video_id!r}: expected crops 0..{n_crops - 1} x segments 0..{n_segments - 1} "
            f"of a {n_frames}-frame video, got {len(rows)} rows (crops {crops})"
        )


def gather(
    chunk_paths: Sequence[str],
    expected: Mapping[str, int],
    segments_cfg: Mapping[str, Any],
    out: str,
    ignored: frozenset[str] = frozenset(),
) -> int:
    """Join the chunks into `out`; `expected` maps video id -> frame count of every video
    that must be there, `ignored` lists videos that may be in a chunk but are left out
    (rejected clips). Returns the number of rows written."""
    if not chunk_paths:
        raise ShardSetError("no chunk shards to gather")
    dims = {path: feature_dim(path) for path in chunk_paths}
    if len(set(dims.values())) > 1:
        raise ShardSetError(f"chunk shards disagree on the feature size: {dims}")
    seen: dict[str, str] = {}
    n_crops: int | None = None
    written = 0
    with shard_writer(out, next(iter(dims.values()))) as append:
        for path in chunk_paths:
            meta, feats = read_shards([path])
            for video_id in meta["video_id"].unique():
                if video_id in seen:
                    raise ShardSetError(f"video {video_id!r} is in {seen[video_id]} and {path}")
                if video_id not in expected and video_id not in ignored:
                    raise ShardSetError(f"{path}: video {video_id!r} is not an expected video")
                seen[video_id] = path
            keep = meta["video_id"].isin(list(expected)).to_numpy()
            meta = meta[keep].sort_values(list(KEY_COLUMNS), kind="stable")
            if meta.empty:
                continue
            if n_crops is None:
                n_crops = int(meta["crop"].max()) + 1
            for video_id, rows in meta.groupby("video_id", sort=False):
                check_video(str(video_id), rows, expected[video_id], segments_cfg, n_crops)
            append(_nulls_as_none(meta), feats[meta.index.to_numpy()])
            written += len(meta)
    missing = [
        video_id
        for video_id, n_frames in expected.items()
        if video_id not in seen and _has_segments(n_frames, segments_cfg)
    ]
    if missing:
        raise ShardSetError(
            f"{len(missing)} expected videos are in no chunk shard, e.g. {sorted(missing)[:5]}"
        )
    if not written:
        raise ShardSetError(f"{out}: no video has features")
    log.info("gathered %d chunks: %d videos, %d rows -> %s", len(dims), len(seen), written, out)
    return written


def _nulls_as_none(meta: pd.DataFrame) -> pd.DataFrame:
    """Text columns read back from parquet hold NaN for null (method of a real video);
    the shard writer wants None."""
    meta = meta.reset_index(drop=True)
    for column in meta.columns:
        if not pd.api.types.is_numeric_dtype(meta[column]):
            values = meta[column].astype(object)
            meta[column] = values.where(values.notna(), None)
    return meta


def _has_segments(n_frames: int, segments_cfg: Mapping[str, Any]) -> bool:
    return bool(segment_bounds(n_frames, segments_cfg["length"], segments_cfg["keep_last_partial"]))

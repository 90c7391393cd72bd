"""One segmentation rule for features and ground truth, so their lengths always match."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def segment_bounds(n_frames: int, length: int, keep_last_partial: bool) -> list[tuple[int, int]]:
    """Half-open frame ranges [start, end) of consecutive `length`-frame segments.

    A trailing run shorter than `length` becomes its own segment when
    `keep_last_partial`, and is dropped (its frames are never scored) otherwise.
    """
    if length <= 0:
        raise ValueError(f"segment length must be positive, got {length}")
    full, rest = divmod(n_frames, length)
    bounds = [(i * length, (i + 1) * length) for i in range(full)]
    if rest and keep_last_partial:
        bounds.append((full * length, n_frames))
    return bounds


def sample_indices(start: int, end: int, per_segment: int) -> list[int]:
    """`per_segment` frame indices spread evenly over [start, end) (centres of equal bins)."""
    n = end - start
    k = min(per_segment, n)
    return [start + int((2 * i + 1) * n // (2 * k)) for i in range(k)]


def frame_labels(n_frames: int, intervals: Sequence[tuple[int, int]]) -> np.ndarray:
    """0/1 per frame from half-open anomaly intervals [start, end)."""
    labels = np.zeros(n_frames, dtype=np.int8)
    for start, end in intervals:
        labels[max(0, int(start)) : min(n_frames, int(end))] = 1
    return labels


def expand_to_frames(segment_scores: np.ndarray, segment_frames: Sequence[int]) -> np.ndarray:
    """Repeat each segment's score over the frames it covers."""
    scores = np.asarray(segment_scores, dtype=np.float64)
    if len(scores) != len(segment_frames):
        raise ValueError(f"{len(scores)} segment scores for {len(segment_frames)} segments")
    return np.repeat(scores, np.asarray(segment_frames, dtype=np.int64))


def read_intervals(ground_truth_path: str) -> dict[str, list[tuple[int, int]]]:
    """ground_truth.parquet (one row per interval) -> video_id -> [(start, end), ...]."""
    import pandas as pd

    gt = pd.read_parquet(ground_truth_path, columns=["video_id", "start", "end"])
    intervals: dict[str, list[tuple[int, int]]] = {}
    for row in gt.itertuples(index=False):
        intervals.setdefault(str(row.video_id), []).append((int(row.start), int(row.end)))
    return intervals

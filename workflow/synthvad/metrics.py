"""The one metrics module: frame-level test metrics, video-level validation AUC, alignment."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from synthvad.segments import expand_to_frames, frame_labels, segment_bounds

# A frame counts as an alarm at or above this score (detectors output probabilities).
ALARM_THRESHOLD = 0.5


def _auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    # ROC AUC is undefined with one class; report None instead of raising.
    if len(np.unique(labels)) < 2:
        return None
    return float(roc_auc_score(labels, scores))


def subset_aucs(
    labels: np.ndarray, scores: np.ndarray, subsets: Mapping[str, np.ndarray]
) -> dict[str, float | None]:
    """ROC AUC of each subset of frames (a boolean mask each), equal to roc_auc_score on
    the subset, with one sort for all of them: the Mann-Whitney statistic (ties count a
    half) over the score-sorted frames. The per-class AUCs of a report at UCF-Crime size
    are 13 subsets of a million frames per experiment; a sort each is most of its time."""
    order = np.argsort(scores, kind="stable")
    ranked_scores = np.asarray(scores, dtype=np.float64)[order]
    ranked_labels = np.asarray(labels)[order].astype(bool)
    return {
        name: _ranked_auc(ranked_labels[mask[order]], ranked_scores[mask[order]])
        for name, mask in subsets.items()
    }


def _ranked_auc(positive: np.ndarray, scores: np.ndarray) -> float | None:
    """AUC of frames sorted by score: P(positive > negative) + P(tie) / 2."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    starts = np.flatnonzero(np.r_[True, scores[1:] != scores[:-1]])  # tie groups
    pos_in = np.add.reduceat(positive.astype(np.int64), starts)
    neg_in = np.add.reduceat((~positive).astype(np.int64), starts)
    neg_below = np.cumsum(neg_in) - neg_in
    return float(np.sum(pos_in * (neg_below + neg_in / 2)) / (n_pos * n_neg))


def _ap(labels: np.ndarray, scores: np.ndarray) -> float | None:
    # AP is undefined without positives (sklearn would warn and return a meaningless 0).
    if not np.any(labels == 1):
        return None
    return float(average_precision_score(labels, scores))


def frame_metrics(
    scores: np.ndarray,
    labels: np.ndarray,
    video_ids: np.ndarray,
    video_labels: Mapping[str, int],
) -> dict:
    """Frame-level metrics over the concatenation of all test videos.

    `scores`, `labels` and `video_ids` are row-aligned per frame; `video_labels`
    maps every video id to its video-level label (0 normal, 1 abnormal).
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    video_ids = np.asarray(video_ids).astype(str)
    if not (len(scores) == len(labels) == len(video_ids)):
        raise ValueError(
            f"{len(scores)} scores, {len(labels)} labels and {len(video_ids)} video ids differ"
        )
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain NaN or infinite values")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("frame labels must be 0 or 1")
    unique_ids = np.unique(video_ids)
    missing = [v for v in unique_ids if v not in video_labels]
    if missing:
        raise ValueError(f"no video-level label for {len(missing)} videos, e.g. {missing[0]!r}")
    video_label = np.array([int(video_labels[v]) for v in video_ids], dtype=np.int64)

    abnormal = video_label == 1
    normal = video_label == 0
    false_alarm = float(np.mean(scores[normal] >= ALARM_THRESHOLD)) if normal.any() else None
    return {
        "auc": _auc(labels, scores),
        "ap": _ap(labels, scores),
        "auc_abnormal_videos": _auc(labels[abnormal], scores[abnormal]),
        "false_alarm_rate": false_alarm,
        "n_frames": int(len(scores)),
        "n_abnormal_frames": int(labels.sum()),
        "n_videos": int(len(unique_ids)),
    }


# Test metrics reported per seed and as mean and std over seeds.
SEED_METRICS = ("auc", "ap", "auc_abnormal_videos", "false_alarm_rate")
# Properties of the test set or of the data selection: equal for every seed of a run.
SHARED_KEYS = ("n_frames", "n_abnormal_frames", "n_videos")


def summarize_seeds(per_seed: Sequence[Mapping]) -> dict:
    """Mean and sample std (ddof 1; None for one seed) of SEED_METRICS over seeds.

    Returns {metric: mean, metric_std: std, ...}, the shared test-set sizes, the seeds,
    their best epochs, the mean final alpha, and the per-seed dicts under "per_seed".
    Single-seed VAD numbers vary by points, so a table should show the spread.
    """
    if not per_seed:
        raise ValueError("no seeds to summarize")
    summary: dict = {"seeds": [int(m["seed"]) for m in per_seed], "n_seeds": len(per_seed)}
    for key in SEED_METRICS:
        values = [float(m[key]) for m in per_seed if m.get(key) is not None]
        summary[key] = float(np.mean(values)) if values else None
        summary[f"{key}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else None
    for key in SHARED_KEYS:
        values = {m[key] for m in per_seed}
        if len(values) > 1:
            raise ValueError(f"seeds disagree on {key}: {sorted(values)}")
        summary[key] = values.pop()
    first = per_seed[0]
    # Split sizes are per stratum round(fraction * n): the same for every seed.
    summary.update({k: v for k, v in first.items() if k.startswith(("n_train_", "n_val"))})
    summary["val_metric"] = first.get("val_metric")
    summary["best_epochs"] = [m.get("best_epoch") for m in per_seed]
    alphas = [float(m["alpha_final"]) for m in per_seed if m.get("alpha_final") is not None]
    summary["alpha_final"] = float(np.mean(alphas)) if alphas else None
    summary["per_seed"] = [dict(m) for m in per_seed]
    return summary


def video_auc(video_scores: Sequence[float], video_labels: Sequence[int]) -> float | None:
    """ROC AUC of video-level scores against video-level labels; None with one class."""
    scores = np.asarray(video_scores, dtype=np.float64)
    labels = np.asarray(video_labels).astype(np.int64)
    if len(scores) != len(labels):
        raise ValueError(f"{len(scores)} video scores for {len(labels)} labels")
    return _auc(labels, scores)


def align_scores_to_ground_truth(
    video_id: str,
    segment_scores: np.ndarray,
    segment_frames: Sequence[int],
    intervals: Sequence[tuple[int, int]],
    n_frames: int,
    length: int,
    keep_last_partial: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame scores and 0/1 labels over exactly the frames the segmentation scores.

    The segments must be those `segments.segment_bounds` gives for a video of
    `n_frames` frames; otherwise scores and labels would be misaligned, so this
    raises instead of truncating (the reference repos' silent mismatch).
    """
    expected = [end - start for start, end in segment_bounds(n_frames, length, keep_last_partial)]
    got = [int(f) for f in segment_frames]
    if got != expected:
        raise ValueError(
            f"video {video_id!r}: features cover {sum(got)} frames in {len(got)} segments, but "
            f"the segmentation of its {n_frames} frames (length {length}, keep_last_partial="
            f"{keep_last_partial}) covers {sum(expected)} frames in {len(expected)} segments"
        )
    frame_scores = expand_to_frames(segment_scores, got)
    # Frames past the last scored segment were never scored, so they get no label either.
    labels = frame_labels(len(frame_scores), intervals)
    return frame_scores, labels

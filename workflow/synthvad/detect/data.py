"""Videos from feature shards, experiment data selection, validation split, and the
in-memory training tensors (read once; batches are index lookups, never file reads)."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from synthvad.detect.store import open_store, video_table
from synthvad.io.shards import read_shards


@dataclass(frozen=True)
class Video:
    """One video's segment features (all its crops) and what the shards say about it."""

    video_id: str
    split: str
    source: str
    method: str | None
    label: int
    features: np.ndarray  # float32 [C, T, D]: crops x segments x feature (or StoredFeatures)
    segment_frames: np.ndarray  # int64 [T], frames each segment covers
    cls: str | None = None  # anomaly class (shard column `class`), None when unknown
    captions: np.ndarray | None = None  # float32 [T, E]: TEVAD's caption stream, if used


@dataclass(frozen=True)
class Batch:
    """A training batch; `labels` is None when the experiment removed labels."""

    x: Tensor  # [B, T, D]
    mask: Tensor  # [B, T] bool, valid segments
    labels: Tensor | None  # [B] float 0/1
    is_synthetic: Tensor  # [B] bool
    captions: Tensor | None = None  # [B, T, E] caption embeddings, when the detector reads them


def experiment_name(experiment: dict) -> str:
    return str(experiment.get("name", "<unnamed experiment>"))


def _video(row, features) -> Video:
    return Video(
        video_id=row.video_id,
        split=row.split,
        source=row.source,
        method=None if pd.isna(row.method) else str(row.method),  # a null column reads as NaN
        label=int(row.label),
        cls=None if pd.isna(row.cls) else str(row.cls),
        features=features,
        segment_frames=np.asarray(row.segment_frames, dtype=np.int64),
    )


def load_videos(paths: list[str]) -> list[Video]:
    """One Video per video id (sorted), every crop kept: from feature shards (read into
    memory) or from feature stores (directories; features read one video at a time)."""
    stores = [p for p in paths if Path(p).is_dir()]
    if stores and len(stores) != len(paths):
        raise ValueError(f"give feature shards or feature stores, not both: {paths}")
    if stores:
        return _stored_videos(stores)
    meta, feats = read_shards(paths)
    order, table = video_table(meta)
    feats = feats[order]
    dim = feats.shape[1]
    return [
        _video(row, feats[row.row : row.row + row.crops * row.segments].reshape(row.crops, row.segments, dim))
        for row in table.itertuples(index=False)
    ]  # fmt: skip


def _stored_videos(stores: list[str]) -> list[Video]:
    videos = [_video(row, features) for store in stores for row, features in open_store(store)]
    dims = {v.features.shape[-1] for v in videos}
    if len(dims) > 1:
        raise ValueError(f"feature stores disagree on the feature size: {sorted(dims)}")
    ids = [v.video_id for v in videos]
    if len(set(ids)) != len(ids):
        raise ValueError("a video appears in two feature stores")
    return sorted(videos, key=lambda v: v.video_id)


def attach_captions(videos: list[Video], captioned: list[Video]) -> list[Video]:
    """Each video with its caption embeddings ([T, E], from the caption shards, one crop),
    checked segment for segment against the visual features."""
    by_id = {c.video_id: c for c in captioned}
    out = []
    for v in videos:
        c = by_id.get(v.video_id)
        if c is None:
            raise ValueError(f"video {v.video_id!r} has visual features but no captions")
        if c.features.shape[1] != v.features.shape[1] or not np.array_equal(
            c.segment_frames, v.segment_frames
        ):
            raise ValueError(
                f"video {v.video_id!r}: captions cover {c.features.shape[1]} segments, the "
                f"visual features {v.features.shape[1]}; rerun the captions rules"
            )
        out.append(Video(**{**v.__dict__, "captions": np.asarray(c.features)[0]}))
    return out


def average_crops(videos: list[Video]) -> list[Video]:
    """Each video with its crops averaged into one ([1, T, D]): the `crops: mean` mode.
    Stored videos average when read (their features stay on disk until then)."""
    return [
        Video(**{**v.__dict__, "features": v.features.averaged()})
        if hasattr(v.features, "averaged")
        else Video(
            **{
                **v.__dict__,
                "features": v.features.mean(axis=0, keepdims=True, dtype=np.float64).astype(
                    np.float32
                ),
            }
        )
        for v in videos
    ]


def scarce_abnormal(videos: list[Video], n: int) -> set[str]:
    """Ids of `n` real abnormal videos, one class after the other (round robin over the
    sorted classes, each class's videos by id): the same few videos for every seed and
    detector, spread over the classes as far as `n` allows."""
    by_class: dict[str, list[str]] = {}
    for v in sorted(videos, key=lambda v: v.video_id):
        by_class.setdefault(v.cls or "", []).append(v.video_id)
    queues = [by_class[c] for c in sorted(by_class)]
    chosen: list[str] = []
    while len(chosen) < n:
        for queue in queues:
            if queue and len(chosen) < n:
                chosen.append(queue.pop(0))
    return set(chosen)


def real_abnormal_ids(videos: list[Video], experiment: dict) -> set[str]:
    """The real abnormal training videos an experiment uses: real_abnormal true (all),
    false (none) or a number (that many, scarce_abnormal)."""
    setting = experiment["real_abnormal"]
    pool = [v for v in videos if v.split == "train" and v.source == "real" and v.label == 1]
    if isinstance(setting, bool):
        return {v.video_id for v in pool} if setting else set()
    if int(setting) > len(pool):
        raise ValueError(
            f"experiment {experiment_name(experiment)!r}: real_abnormal asks for {setting} real "
            f"abnormal training videos, the feature shards have {len(pool)}"
        )
    return scarce_abnormal(pool, int(setting))


def select_training(videos: list[Video], experiment: dict) -> list[Video]:
    """Real train normal videos, the real train abnormal ones asked for, chosen synthetic ones."""
    name = experiment_name(experiment)
    methods = list(experiment.get("synthetic", []))
    real_abnormal = experiment["real_abnormal"]
    abnormal_ids = real_abnormal_ids(videos, experiment)
    available = {v.method for v in videos if v.source == "synthetic"}
    unknown = sorted(set(methods) - available)
    if unknown:
        raise ValueError(
            f"experiment {name!r}: no synthetic videos of method(s) {unknown} in the feature "
            f"shards (available: {sorted(m for m in available if m is not None)})"
        )
    chosen = [
        v
        for v in videos
        if v.split == "train"
        and (
            (v.source == "real" and (v.label == 0 or v.video_id in abnormal_ids))
            or (v.source == "synthetic" and v.method in methods)
        )
    ]
    if not chosen:
        raise ValueError(f"experiment {name!r}: the training set is empty")
    if not experiment.get("unsupervised", False):
        for label, word in ((0, "normal"), (1, "abnormal")):
            if not any(v.label == label for v in chosen):
                raise ValueError(
                    f"experiment {name!r}: the training set has no {word} videos "
                    f"(real_abnormal={real_abnormal}, synthetic={methods})"
                )
    return chosen


def select_test(videos: list[Video], experiment: dict) -> list[Video]:
    """Real videos of the test split; synthetic videos are never tested on."""
    test = [v for v in videos if v.source == "real" and v.split == "test"]
    if not test:
        raise ValueError(f"experiment {experiment_name(experiment)!r}: the test set is empty")
    return test


def split_validation(
    videos: list[Video], fraction: float, seed: int, by_label: bool = True
) -> tuple[list[Video], list[Video]]:
    """Seeded (train, val) split of training videos, stratified by source (and label).

    Each stratum keeps at least one video for training. Without `by_label` (labels
    removed) the split must not look at labels either.
    """
    rng = np.random.default_rng(seed)
    strata: dict[tuple, list[int]] = {}
    for i, v in enumerate(videos):
        key = (v.source, v.label) if by_label else (v.source,)
        strata.setdefault(key, []).append(i)
    val_idx: set[int] = set()
    for key in sorted(strata):
        members = strata[key]
        n_val = min(len(members) - 1, round(fraction * len(members)))
        val_idx.update(members[j] for j in rng.permutation(len(members))[:n_val])
    train = [v for i, v in enumerate(videos) if i not in val_idx]
    val = [v for i, v in enumerate(videos) if i in val_idx]
    return train, val


def count_videos(videos: list[Video]) -> dict[str, int]:
    counts = Counter(f"{v.source}_{'abnormal' if v.label else 'normal'}" for v in videos)
    return {
        f"{source}_{word}": counts.get(f"{source}_{word}", 0)
        for source in ("real", "synthetic")
        for word in ("normal", "abnormal")
    }


def resample_segments(features: np.ndarray, length: int) -> np.ndarray:
    """[C, T, D] -> [C, min(T, length), D]: longer videos become `length` chunk means.

    The common fixed-length training input of MIL detectors: chunk i averages the
    segments between linspace(0, T, length + 1) bounds. Shorter videos stay as they are.
    """
    n = features.shape[1]
    if n <= length:
        return features
    bounds = np.linspace(0, n, length + 1).round().astype(np.int64)
    sums = np.add.reduceat(features.astype(np.float64), bounds[:-1], axis=1)
    return (sums / np.diff(bounds)[None, :, None]).astype(np.float32)


def resample_exactly(features: np.ndarray, length: int) -> np.ndarray:
    """[C, T, D] -> [C, length, D] by UR-DMU's loader rule: bounds floor(linspace(0, T,
    length + 1)); a chunk is the mean of its segments, or the one segment at its start
    when the bounds coincide (short videos are stretched by repeating segments)."""
    bounds = np.floor(np.linspace(0, features.shape[1], length + 1)).astype(np.int64)
    out = np.empty((features.shape[0], length, features.shape[2]), dtype=np.float32)
    for i, (start, end) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        out[:, i] = features[:, start:end].mean(axis=1) if end > start else features[:, start]
    return out


class TrainSet:
    """Training videos as padded tensors [N, C, T, D], built once per run.

    With `exact_length` every video is resampled to exactly `segments` (resample_exactly,
    for detectors that train on one fixed length); otherwise longer videos are averaged
    down to it and shorter ones padded (resample_segments)."""

    def __init__(
        self, videos: list[Video], segments: int, labelled: bool, exact_length: bool = False
    ) -> None:
        if not videos:
            raise ValueError("no training videos")
        resample = resample_exactly if exact_length else resample_segments
        # Shapes first (stored videos know theirs without reading), then one video at a
        # time into the one tensor: memory is the tensor plus a video, not the data set.
        lengths = [segments if exact_length else min(v.features.shape[1], segments) for v in videos]
        n_crops = max(v.features.shape[0] for v in videos)
        dim = videos[0].features.shape[2]
        self.features = torch.zeros(len(videos), n_crops, max(lengths), dim)
        self.mask = torch.zeros(len(videos), max(lengths), dtype=torch.bool)
        self.n_crops = torch.tensor([v.features.shape[0] for v in videos])
        for i, v in enumerate(videos):
            f = resample(np.asarray(v.features), segments)
            self.features[i, : f.shape[0], : f.shape[1]] = torch.from_numpy(f)
            self.mask[i, : f.shape[1]] = True
        captioned = {v.captions is not None for v in videos}
        if len(captioned) > 1:
            raise ValueError("some training videos have captions and others not")
        self.captions = None
        if captioned == {True}:
            self.captions = torch.zeros(len(videos), max(lengths), videos[0].captions.shape[-1])
            for i, v in enumerate(videos):
                c = resample(v.captions[None], segments)[0]
                self.captions[i, : len(c)] = torch.from_numpy(c)
        self.labels = torch.tensor([float(v.label) for v in videos]) if labelled else None
        self.is_synthetic = torch.tensor([v.source == "synthetic" for v in videos])
        self.labelled = labelled
        # Streams group videos for balanced batches; kept as numpy for the sampler.
        self.video_labels = np.array([v.label for v in videos])
        self.sources = np.array([v.source for v in videos])

    def __len__(self) -> int:
        return len(self.features)

    def to(self, device: torch.device) -> TrainSet:
        """Move the tensors (once) to the training device; returns self."""
        for name in ("features", "mask", "n_crops", "labels", "is_synthetic", "captions"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.to(device))
        return self

    def segment_moments(self, chunk: int = 256) -> tuple[Tensor, Tensor]:
        """Mean and (unbiased) std of every valid (crop, segment) row, summed in float64
        a chunk of videos at a time: no copy of the training tensor."""
        dim = self.features.shape[-1]
        total, sums, squares = 0, torch.zeros(dim, dtype=torch.float64), torch.zeros(dim, dtype=torch.float64)  # fmt: skip
        crop_ok = torch.arange(self.features.shape[1])[None, :] < self.n_crops.cpu()[:, None]
        ok = crop_ok[:, :, None] & self.mask.cpu()[:, None, :]
        for start in range(0, len(self.features), chunk):
            rows = self.features[start : start + chunk][ok[start : start + chunk]].double().cpu()
            total += len(rows)
            sums += rows.sum(dim=0)
            squares += rows.pow(2).sum(dim=0)
        mean = sums / total
        variance = (squares - total * mean.pow(2)).clamp_min(0.0) / max(1, total - 1)
        return mean, variance.sqrt()

    def batch(self, index: Tensor, crop_generator: torch.Generator | None) -> Batch:
        """Videos `index`; with a generator each gets one of its crops at random, else crop 0."""
        index = index.to(self.features.device)
        if crop_generator is None:
            crop = torch.zeros_like(index)
        else:
            draw = torch.rand(len(index), generator=crop_generator).to(self.features.device)
            crop = (draw * self.n_crops[index]).long()
        return Batch(
            x=self.features[index, crop],
            mask=self.mask[index],
            labels=None if self.labels is None else self.labels[index],
            is_synthetic=self.is_synthetic[index],
            captions=None if self.captions is None else self.captions[index],
        )


def spread_permutation(groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random order of 0..n-1 in which every group is spread evenly.

    Items of each group get keys (rank + u) / size with a random rank and u ~ U(0, 1);
    sorting by key interleaves groups in proportion, so every window of the order
    (a batch) holds about its share of each group, e.g. of real and synthetic videos.
    """
    keys = np.empty(len(groups))
    for value in np.unique(groups):
        members = np.flatnonzero(groups == value)
        ranks = rng.permutation(len(members))
        keys[members] = (ranks + rng.random(len(members))) / len(members)
    return np.argsort(keys, kind="stable")


class StreamSampler:
    """Each step takes `per_step` videos from every stream; streams cycle independently.

    An epoch is enough steps for the largest stream to be seen once. Streams are index
    arrays into the TrainSet; within a stream, videos are spread by `groups` (source).
    """

    def __init__(
        self, streams: list[np.ndarray], groups: np.ndarray, per_step: int, seed: int
    ) -> None:
        if any(len(s) == 0 for s in streams):
            raise ValueError("a training stream is empty")
        self.streams, self.groups, self.per_step = streams, groups, per_step
        self.rng = np.random.default_rng(seed)
        self.queues: list[list[int]] = [[] for _ in streams]
        self.steps_per_epoch = math.ceil(max(len(s) for s in streams) / per_step)

    def _take(self, i: int) -> list[int]:
        queue, stream = self.queues[i], self.streams[i]
        while len(queue) < self.per_step:
            queue.extend(stream[spread_permutation(self.groups[stream], self.rng)].tolist())
        taken, self.queues[i] = queue[: self.per_step], queue[self.per_step :]
        return taken

    def next_index(self) -> Tensor:
        return torch.tensor([j for i in range(len(self.streams)) for j in self._take(i)])

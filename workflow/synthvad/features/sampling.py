"""Which frames stage 6 encodes: a video's segments and the frames sampled from each.

A segment's feature is the mean of its sampled frames' unit-norm embeddings (per crop).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from synthvad.segments import sample_indices, segment_bounds

SAMPLING = ("even", "center", "all", "stride")


def segment_samples(start: int, end: int, features_cfg: Mapping[str, Any]) -> list[int]:
    """Frame indices of segment [start, end) that are encoded, per features.sampling."""
    mode = features_cfg["sampling"]
    if mode == "even":
        return sample_indices(start, end, features_cfg["frames_per_segment"])
    if mode == "center":
        return [start + (end - start) // 2]
    if mode == "all":
        return list(range(start, end))
    if mode == "stride":
        return list(range(start, end, features_cfg["stride"]))
    raise ValueError(f"features.sampling: {mode!r} is not one of {', '.join(SAMPLING)}")


@dataclass(frozen=True)
class VideoPlan:
    """Segments of one video and the frames encoded for each."""

    bounds: tuple[tuple[int, int], ...]
    samples: tuple[tuple[int, ...], ...]

    @property
    def n_segments(self) -> int:
        return len(self.bounds)

    @property
    def frames(self) -> list[int]:
        """Every sampled frame index, segment by segment (ascending)."""
        return [i for s in self.samples for i in s]

    @property
    def owners(self) -> list[int]:
        """The segment of each entry of `frames`."""
        return [seg for seg, s in enumerate(self.samples) for _ in s]

    @property
    def counts(self) -> list[int]:
        return [len(s) for s in self.samples]

    @property
    def segment_frames(self) -> list[int]:
        """Frames each segment covers (its `n_frames` in the shard)."""
        return [end - start for start, end in self.bounds]


def plan_video(
    n_frames: int, segments_cfg: Mapping[str, Any], features_cfg: Mapping[str, Any]
) -> VideoPlan:
    bounds = segment_bounds(n_frames, segments_cfg["length"], segments_cfg["keep_last_partial"])
    samples = tuple(tuple(segment_samples(s, e, features_cfg)) for s, e in bounds)
    return VideoPlan(bounds=tuple(bounds), samples=samples)

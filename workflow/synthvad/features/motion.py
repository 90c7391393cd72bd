"""The `motion` extractor: weight-free segment descriptors of motion and appearance.

No model to download, so it runs anywhere (a fast CPU baseline on real videos, and the
offline demo's detection features), and it sees what surveillance anomalies are made of:
where and how much the image changes, in which direction, and with which colours.

Per segment (every frame of it, resized to `size` by area averaging), on a `grid` x
`grid` split of the frame, with dI = |I_t - I_{t-1}| the grey-level difference of
consecutive frames of the segment:

- motion energy per cell: the mean of dI over the cell, then its mean, std and max over
  the segment's frame pairs (3 G^2), and the fraction of the cell's pixels with
  dI > `moving_threshold`, averaged over time (G^2: moving area, robust to sensor noise);
- motion direction on a `flow_grid` x `flow_grid` split: a histogram of `orientations`
  bins of the normal flow direction -sign(I_t) grad I (the only direction one brightness
  constancy equation gives per pixel, Horn & Schunck), weighted by dI (F^2 K);
- global brightness change |mean(I_t - I_{t-1})|, mean over time (1: flashes, fire);
- colour moments per cell: mean and std of R, G, B over the segment's pixels (6 G^2).

A segment of one frame has no frame pair: its motion entries are 0. Features depend only
on the segment's own frames, so a segment's value does not change with its neighbours.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from tqdm import tqdm

from synthvad.features.extract import VideoFeatures
from synthvad.features.loader import VideoTask
from synthvad.features.sampling import VideoPlan, plan_video
from synthvad.io.video import VideoError, probe, read_frames

log = logging.getLogger(__name__)

EVERY_FRAME = {"sampling": "all"}  # features.sampling of the clip extractor, as motion reads
READ_FRAMES = 64  # frames decoded per read (whole segments): bounds memory on long videos


@dataclass(frozen=True)
class MotionSpec:
    """features.motion: the descriptor's geometry (defaults: the config schema)."""

    grid: int
    height: int
    width: int
    flow_grid: int
    orientations: int
    moving_threshold: float

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> MotionSpec:
        height, width = cfg["size"]
        return cls(
            grid=int(cfg["grid"]),
            height=int(height),
            width=int(width),
            flow_grid=int(cfg["flow_grid"]),
            orientations=int(cfg["orientations"]),
            moving_threshold=float(cfg["moving_threshold"]),
        )

    @property
    def dim(self) -> int:
        cells = self.grid**2
        return 4 * cells + self.flow_grid**2 * self.orientations + 1 + 6 * cells


def to_working_size(frames: np.ndarray, spec: MotionSpec) -> Tensor:
    """uint8 RGB [N, H, W, 3] -> float [N, 3, h, w] in [0, 1], area-averaged to spec size."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(255.0)
    return F.interpolate(x, size=(spec.height, spec.width), mode="area")


def _orientation_histogram(gray: Tensor, diff: Tensor, spec: MotionSpec) -> Tensor:
    """[S, P, h, w] frames after each pair and their signed differences -> [S, F^2 K]."""
    # Central differences inside the frame, one-sided at its border (replicate padding).
    padded = F.pad(gray.flatten(0, 1)[:, None], (1, 1, 1, 1), mode="replicate")[:, 0]
    gx = (padded[:, 1:-1, 2:] - padded[:, 1:-1, :-2]).view_as(gray)
    gy = (padded[:, 2:, 1:-1] - padded[:, :-2, 1:-1]).view_as(gray)
    sign = -torch.sign(diff)  # normal flow points down the brightness gradient when I rises
    angle = torch.atan2(sign * gy, sign * gx)  # (-pi, pi]
    k = spec.orientations
    bins = ((angle + torch.pi) * (k / (2 * torch.pi))).long().clamp_(0, k - 1)
    weights = F.one_hot(bins, k).permute(0, 1, 4, 2, 3).float() * diff.abs()[:, :, None]
    s, p = weights.shape[:2]
    pooled = F.adaptive_avg_pool2d(weights.flatten(0, 2), spec.flow_grid)  # [S*P*K, F, F]
    return pooled.view(s, p, -1).mean(dim=1)


def segment_descriptors(frames: Tensor, spec: MotionSpec) -> Tensor:
    """Segments of equal length, float [S, L, 3, h, w] in [0, 1] -> descriptors [S, D]."""
    s, length = frames.shape[:2]
    cells = spec.grid**2
    colour = frames.transpose(1, 2).flatten(2, 3)  # [S, 3, L*h, w]: pool over time too
    grid_h = (spec.grid * length, spec.grid)
    colour_mean = F.adaptive_avg_pool2d(colour, grid_h).view(s, 3, length, cells).mean(2)
    colour_sq = F.adaptive_avg_pool2d(colour**2, grid_h).view(s, 3, length, cells).mean(2)
    colour_std = (colour_sq - colour_mean**2).clamp_min(0).sqrt()
    appearance = torch.cat([colour_mean.flatten(1), colour_std.flatten(1)], dim=1)
    n_motion = 4 * cells + spec.flow_grid**2 * spec.orientations + 1
    if length < 2:
        return torch.cat([frames.new_zeros(s, n_motion), appearance], dim=1)
    gray = frames.mean(dim=2)  # [S, L, h, w]
    diff = gray[:, 1:] - gray[:, :-1]  # [S, L-1, h, w]
    energy = diff.abs()
    per_cell = F.adaptive_avg_pool2d(energy, spec.grid).flatten(2)  # [S, L-1, G^2]
    moving = F.adaptive_avg_pool2d((energy > spec.moving_threshold).float(), spec.grid)
    motion = torch.cat(
        [
            per_cell.mean(1),
            per_cell.std(1, unbiased=False),
            per_cell.amax(1),
            moving.flatten(2).mean(1),
            _orientation_histogram(gray[:, 1:], diff, spec),
            diff.mean(dim=(2, 3)).abs().mean(1, keepdim=True),
        ],
        dim=1,
    )
    return torch.cat([motion, appearance], dim=1)


def video_descriptors(path: str, plan: VideoPlan, spec: MotionSpec) -> np.ndarray:
    """Every segment of one video -> float32 [T, D], decoding about READ_FRAMES at a time."""
    out = np.zeros((plan.n_segments, spec.dim), dtype=np.float32)
    lengths = plan.segment_frames
    seg = 0
    while seg < plan.n_segments:
        # Whole segments per read; segments of one length are described in one call.
        first, frames = seg, 0
        while seg < plan.n_segments and (frames == 0 or frames + lengths[seg] <= READ_FRAMES):
            frames += lengths[seg]
            seg += 1
        start, end = plan.bounds[first][0], plan.bounds[seg - 1][1]
        block = to_working_size(read_frames(path, list(range(start, end))), spec)
        # Consecutive segments of one length (all but a partial last one) in one call.
        offset, j = 0, first
        while j < seg:
            length = lengths[j]
            k = j
            while k < seg and lengths[k] == length:
                k += 1
            count = k - j
            chunk = block[offset : offset + count * length].view(count, length, *block.shape[1:])
            out[j:k] = segment_descriptors(chunk, spec).numpy()
            offset += count * length
            j = k
    return out


class MotionVideos(IterableDataset):
    """One item per video, its descriptors computed in the worker that decodes it."""

    def __init__(
        self, tasks: Sequence[VideoTask], segments_cfg: Mapping[str, Any], spec: MotionSpec
    ) -> None:
        self.tasks, self.segments_cfg, self.spec = list(tasks), dict(segments_cfg), spec

    def __iter__(self) -> Iterator[VideoFeatures]:
        info = get_worker_info()
        mine = self.tasks if info is None else self.tasks[info.id :: info.num_workers]
        for task in mine:
            yield self._video(task)

    def _video(self, task: VideoTask) -> VideoFeatures:
        plan = VideoPlan(bounds=(), samples=())
        try:
            n_frames = task.n_frames if task.n_frames is not None else probe(task.path).n_frames
            # Every frame of every segment: the descriptors need consecutive frames.
            plan = plan_video(n_frames, self.segments_cfg, EVERY_FRAME)
            features = video_descriptors(task.path, plan, self.spec)
        except VideoError as exc:
            return VideoFeatures(
                task.pos, None, plan.counts, plan.segment_frames, 1, error=exc.reason
            )
        return VideoFeatures(task.pos, features, plan.counts, plan.segment_frames, 1)


def resolve_motion_workers(workers: int | str, threads: int) -> int:
    """auto: one single-threaded process per core of the job when it has several (the
    descriptors are computed where the video is decoded), else the main process."""
    if workers != "auto":
        return int(workers)
    return threads if threads > 1 else 0


def _as_is(video: VideoFeatures) -> VideoFeatures:
    return video


def extract_motion(
    tasks: Sequence[VideoTask],
    segments_cfg: Mapping[str, Any],
    spec: MotionSpec,
    workers: int,
) -> Iterator[VideoFeatures]:
    """Descriptors of every task's video, in the order videos finish."""
    loader = DataLoader(
        MotionVideos(tasks, segments_cfg, spec),
        batch_size=None,
        num_workers=workers,
        collate_fn=_as_is,
        prefetch_factor=2 if workers else None,
    )
    with torch.inference_mode(), tqdm(desc="motion features", unit="frame", mininterval=5.0) as bar:
        for video in loader:
            bar.update(sum(video.segment_frames))
            yield video

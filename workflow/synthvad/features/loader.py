"""The decoding side of stage 6: background workers (a torch DataLoader) read only the
sampled frames of each video (decord batch reads through synthvad.io.video), crop them in
uint8 and pack the crops of consecutive videos into full model batches.

Each worker owns whole videos, so a video's images arrive in order from one worker. A
batch carries, besides images and their accumulator rows, the videos that start in it
(`started`: their segment plan) and the videos whose last image it holds (`finished`,
with the error that stopped a video, if any), so the model side needs no other channel.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import IterableDataset, get_worker_info

from synthvad.features.sampling import plan_video
from synthvad.features.transforms import CROPS, crops_uint8
from synthvad.io.video import VideoError, probe, read_frames

READ_BLOCK = 64  # sampled frames decoded per read: bounds worker memory on long HD videos


@dataclass(frozen=True)
class VideoTask:
    pos: int  # the video's position in the job's list
    path: str
    n_frames: int | None = None  # from the index when known; probed otherwise


class BatchPacker:
    """Fills fixed-size batches from the images of consecutive videos.

    Pieces queue as they are decoded; a batch copies only its own images out of them.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.pieces: deque[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = deque()
        self.count = 0
        self.started: list[dict[str, Any]] = []
        self.finished: list[tuple[int, int, str | None]] = []  # (pos, buffered end, error)

    def start(self, header: dict[str, Any]) -> None:
        self.started.append(header)

    def add(self, pos: int, images: torch.Tensor, rows: torch.Tensor) -> Iterator[dict[str, Any]]:
        self.pieces.append((images, torch.full((len(images),), pos, dtype=torch.int64), rows))
        self.count += len(images)
        while self.count >= self.size:
            yield self._emit(self.size)

    def finish(self, pos: int, error: str | None = None) -> None:
        """The video's images end at the current buffer end."""
        self.finished.append((pos, self.count, error))

    def flush(self) -> Iterator[dict[str, Any]]:
        if self.count or self.started or self.finished:
            yield self._emit(self.count)

    def _emit(self, n: int) -> dict[str, Any]:
        taken: list[tuple[torch.Tensor, ...]] = []
        need = n
        while need:
            piece = self.pieces[0]
            if len(piece[0]) <= need:
                taken.append(self.pieces.popleft())
                need -= len(piece[0])
            else:
                taken.append(tuple(t[:need] for t in piece))
                self.pieces[0] = tuple(t[need:] for t in piece)  # type: ignore[assignment]
                need = 0
        images, videos, rows = (
            torch.cat([t[i] for t in taken]) if taken else torch.empty(0, dtype=torch.int64)
            for i in range(3)
        )
        batch = {
            "images": images,
            "videos": videos,
            "rows": rows,
            "started": self.started,
            "finished": [(pos, err) for pos, end, err in self.finished if end <= n],
        }
        self.finished = [(pos, end - n, err) for pos, end, err in self.finished if end > n]
        self.started = []
        self.count -= n
        return batch


class SegmentImages(IterableDataset):
    """Batches of uint8 crops [B, 3, S, S] for the videos of one job."""

    def __init__(
        self,
        tasks: Sequence[VideoTask],
        segments_cfg: Mapping[str, Any],
        features_cfg: Mapping[str, Any],
        image_size: int,
        batch_size: int,
    ) -> None:
        self.tasks = list(tasks)
        self.segments_cfg = dict(segments_cfg)
        self.features_cfg = dict(features_cfg)
        self.image_size = image_size
        self.batch_size = batch_size

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        mine = self.tasks if info is None else self.tasks[info.id :: info.num_workers]
        packer = BatchPacker(self.batch_size)
        for task in mine:
            try:
                yield from self._video(task, packer)
            except VideoError as exc:
                packer.finish(task.pos, error=exc.reason)
            else:
                packer.finish(task.pos)
        yield from packer.flush()

    def _video(self, task: VideoTask, packer: BatchPacker) -> Iterator[dict[str, Any]]:
        n_frames = task.n_frames if task.n_frames is not None else probe(task.path).n_frames
        plan = plan_video(n_frames, self.segments_cfg, self.features_cfg)
        packer.start(
            {"pos": task.pos, "counts": plan.counts, "segment_frames": plan.segment_frames}
        )
        frames, owners = plan.frames, torch.tensor(plan.owners, dtype=torch.int64)
        n_crops = CROPS[self.features_cfg["crops"]]
        for start in range(0, len(frames), READ_BLOCK):
            block = frames[start : start + READ_BLOCK]
            crops = crops_uint8(
                read_frames(task.path, block),
                self.features_cfg["crops"],
                self.image_size,
                self.features_cfg["ten_crop_resize"],
            )
            # Accumulator row of each crop image: crop-major, crop * n_segments + segment.
            segments = owners[start : start + len(block)].repeat_interleave(n_crops)
            crop_ids = torch.arange(n_crops).repeat(len(block))
            rows = crop_ids * plan.n_segments + segments
            yield from packer.add(task.pos, crops.flatten(0, 1), rows)

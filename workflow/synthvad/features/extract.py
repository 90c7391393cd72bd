"""The model side of stage 6: encode the loader's batches and average them per segment.

Decoding runs in DataLoader workers while the model computes, so the two overlap. On a
GPU: pinned batches copied without blocking, bf16/fp16 autocast, channels_last, per-video
sums kept on the device, and finished videos copied back one batch late so that the host
never waits for the batch the GPU is computing. On a CPU: float32, the job's threads for
the model, decoding in between batches (see resolve_workers).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from synthvad.features.loader import SegmentImages, VideoTask
from synthvad.features.transforms import CROPS, normalize

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoFeatures:
    """One finished video: features [crops * segments, D], crop-major, or the error."""

    pos: int
    features: np.ndarray | None
    counts: list[int]  # frames sampled per segment
    segment_frames: list[int]  # frames each segment covers
    n_crops: int
    error: str | None = None

    @property
    def n_segments(self) -> int:
        return len(self.segment_frames)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """features.precision -> autocast dtype, None for plain float32."""
    if precision == "float32" or (precision == "auto" and device.type != "cuda"):
        return None
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return getattr(torch, precision)


def resolve_workers(workers: int | str, device: torch.device, threads: int) -> int:
    """auto: on a GPU, every core but the main process's decodes; on a CPU, decoding stays
    in the main process: the model already keeps every core of the job busy, and a decoding
    process only competes with it (2 cores, ViT-B/32: 100% of the model-only throughput
    in-process against 87-95% with one worker, benchmarks/README.md)."""
    if workers != "auto":
        return int(workers)
    return max(1, threads - 1) if device.type == "cuda" else 0


def embedding_dim(bundle: Any) -> int:
    dim = getattr(getattr(bundle.model, "visual", None), "output_dim", None)
    if isinstance(dim, int):
        return dim
    probe = torch.zeros(1, 3, bundle.image_size, bundle.image_size, device=bundle.device)
    with torch.inference_mode():
        return int(bundle.model.encode_image(probe).shape[-1])


def prepare_model(bundle: Any) -> None:
    """GPU layout: channels_last weights and cuDNN autotuning (conv stems, RN50)."""
    if bundle.device.type == "cuda":
        bundle.model.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True


def encode(bundle: Any, images: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """uint8 crops [B, 3, S, S] (pinned on GPU runs) -> unit-norm float32 embeddings."""
    x = normalize(images.to(bundle.device, non_blocking=True), bundle.mean, bundle.std)
    if bundle.device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    autocast = (
        torch.autocast(bundle.device.type, dtype=dtype) if dtype else contextlib.nullcontext()
    )
    with autocast:
        emb = bundle.model.encode_image(x)
    return torch.nn.functional.normalize(emb.float(), dim=-1)


def extract(
    tasks: Sequence[VideoTask],
    bundle: Any,
    segments_cfg: Mapping[str, Any],
    features_cfg: Mapping[str, Any],
    batch_size: int,
    workers: int,
) -> Iterator[VideoFeatures]:
    """Features of every task's video, in the order videos finish."""
    device = bundle.device
    cuda = device.type == "cuda"
    n_crops = CROPS[features_cfg["crops"]]
    dtype = autocast_dtype(features_cfg["precision"], device)
    prepare_model(bundle)
    dim = embedding_dim(bundle)
    dataset = SegmentImages(tasks, segments_cfg, features_cfg, bundle.image_size, batch_size)
    loader = DataLoader(
        dataset,
        batch_size=None,
        num_workers=workers,
        pin_memory=cuda,
        prefetch_factor=4 if workers else None,
    )
    sums: dict[int, torch.Tensor] = {}
    headers: dict[int, dict[str, Any]] = {}
    pending: deque[tuple[Any, list[tuple[dict[str, Any], torch.Tensor | None, str | None]]]]
    pending = deque()
    progress = tqdm(desc="features", unit="img", mininterval=5.0)
    with torch.inference_mode(), progress:
        for batch in loader:
            for header in batch["started"]:
                headers[header["pos"]] = header
                rows = n_crops * len(header["counts"])
                sums[header["pos"]] = torch.zeros(rows, dim, device=device)
            if len(batch["images"]):
                emb = encode(bundle, batch["images"], dtype)
                rows = batch["rows"].to(device, non_blocking=True)
                videos, lengths = torch.unique_consecutive(batch["videos"], return_counts=True)
                start = 0
                for pos, n in zip(videos.tolist(), lengths.tolist(), strict=True):
                    # index_put_ with accumulate: CPU index_add_ costs ms per call
                    sums[pos].index_put_(
                        (rows[start : start + n],), emb[start : start + n], accumulate=True
                    )
                    start += n
                progress.update(len(batch["images"]))
            done = []
            for pos, error in batch["finished"]:
                # A video that failed before its plan existed has neither.
                header = headers.pop(pos, {"pos": pos, "counts": [], "segment_frames": []})
                total = sums.pop(pos, None)
                done.append((header, None if error else total.to("cpu", non_blocking=cuda), error))
            event = torch.cuda.Event() if cuda else None
            if event is not None:
                event.record()
            pending.append((event, done))
            # One batch late on a GPU: the copies of batch i finish while i + 1 computes.
            while len(pending) > (1 if cuda else 0):
                yield from _finished(*pending.popleft(), n_crops)
        while pending:
            yield from _finished(*pending.popleft(), n_crops)


def _finished(
    event: Any, done: list[tuple[dict[str, Any], torch.Tensor | None, str | None]], n_crops: int
) -> Iterator[VideoFeatures]:
    if event is not None:
        event.synchronize()
    for header, total, error in done:
        if error is not None or total is None:
            yield VideoFeatures(
                header["pos"], None, header["counts"], header["segment_frames"], n_crops, error
            )
            continue
        counts = np.tile(np.asarray(header["counts"], dtype=np.float64), n_crops)
        features = (total.numpy().astype(np.float64) / counts[:, None]).astype(np.float32)
        yield VideoFeatures(
            header["pos"], features, header["counts"], header["segment_frames"], n_crops
        )


class Throughput:
    """Images and video frames per second of a job, for its log."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.images = 0
        self.frames = 0

    def add(self, video: VideoFeatures) -> None:
        self.images += sum(video.counts) * video.n_crops
        self.frames += sum(video.segment_frames)

    def summary(self) -> str:
        seconds = max(time.perf_counter() - self.started, 1e-9)
        return (
            f"{self.images} images ({self.images / seconds:.1f}/s), {self.frames} video frames "
            f"({self.frames / seconds:.1f}/s) in {seconds:.1f} s"
        )

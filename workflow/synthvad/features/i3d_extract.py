"""The `i3d` and `i3d_resnet50` extractors: one 16-frame clip per segment, per crop, through
an I3D network (InceptionI3d, 1024-D; I3D-ResNet50, 2048-D), the features the public
UCF-Crime / ShanghaiTech / XD-Violence releases are made of.

A segment's clip is its 16 frames (a shorter last segment repeats its last frame, a longer
segment gives 16 spread evenly); frames are resized and cropped as the public features were
(i3d_crops; sources in synthvad.features.i3d). Decoding and cropping (uint8) run in
DataLoader workers on a GPU and in the main process on a CPU, as for the CLIP extractor;
the network sees `batch_size` clips at a time.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from tqdm import tqdm

from synthvad.features.extract import VideoFeatures, autocast_dtype
from synthvad.features.loader import VideoTask
from synthvad.features.transforms import CROPS
from synthvad.io.video import VideoError, probe, read_frames
from synthvad.segments import segment_bounds

log = logging.getLogger(__name__)

CLIP_FRAMES = 16
CROP_SIZE = 224
READ_SEGMENTS = 4  # segments decoded per read: bounds memory on long HD videos


@dataclass(frozen=True)
class Network:
    """Where an I3D network lives: its module, loader, input normalisation and width."""

    module: str
    loader: str
    dim: int


NETWORKS = {
    "i3d": Network("synthvad.features.i3d", "load_inception_i3d", 1024),
    "i3d_resnet50": Network("synthvad.features.i3d_resnet", "load_i3d_resnet50", 2048),
}


def network_module(extractor: str) -> Any:
    return importlib.import_module(NETWORKS[extractor].module)


def load_network(extractor: str, weights: str | None, seed: int) -> nn.Module:
    """The extractor's network, from the weights file (or random weights when None)."""
    module = network_module(extractor)
    return getattr(module, NETWORKS[extractor].loader)(weights, seed=seed)


# The public features' frame size (width, height) and crop boxes (top, left) on it, in
# the community's order: corners and centre, then the same five of the mirrored frame.
FRAME_SIZE = (340, 256)
CROP_BOXES = ((0, 0), (0, 116), (16, 58), (32, 0), (32, 116))
CENTRE = 2


def clip_frame_indices(start: int, end: int, length: int = CLIP_FRAMES) -> list[int]:
    """`length` frame indices of segment [start, end): its frames, the last one repeated
    when it is shorter (UR-DMU's padding of a partial last segment); a longer segment
    gives the centres of `length` equal bins."""
    n = end - start
    if n <= length:
        return [start + min(i, n - 1) for i in range(length)]
    return [start + (2 * i + 1) * n // (2 * length) for i in range(length)]


def i3d_crops(frames: np.ndarray, mode: str) -> torch.Tensor:
    """uint8 RGB frames [N, H, W, 3] -> uint8 crops [N, K, 3, 224, 224] as the public I3D
    features were made: the whole frame resized to 340 x 256 (Lanczos, aspect ratio
    ignored), then ten 224 crops (`ten`) or the centre one (`center`)."""
    from PIL import Image

    if mode not in CROPS:
        raise ValueError(f"features.crops: {mode!r} is not one of {', '.join(CROPS)}")
    resized = np.stack(
        [
            np.asarray(Image.fromarray(f).resize(FRAME_SIZE, Image.Resampling.LANCZOS))
            for f in frames
        ]
    )
    x = torch.from_numpy(resized).permute(0, 3, 1, 2)  # [N, 3, 256, 340]
    boxes = [CROP_BOXES[CENTRE]] if mode == "center" else list(CROP_BOXES)
    views = [x] if mode == "center" else [x, x.flip(-1)]
    crops = [v[:, :, t : t + CROP_SIZE, s : s + CROP_SIZE] for v in views for t, s in boxes]
    return torch.stack(crops, dim=1).contiguous()


@dataclass(frozen=True)
class ClipBlock:
    """Crops of consecutive segments of one video, or the end of that video."""

    pos: int
    first: int  # first segment of the block
    clips: torch.Tensor | None  # uint8 [segments, crops, 16, 3, S, S]
    segment_frames: tuple[int, ...] = ()  # the whole video's, on its first block
    error: str | None = None
    last: bool = False


class SegmentClips(IterableDataset):
    """Blocks of segment clips, video after video (a worker owns whole videos)."""

    def __init__(
        self, tasks: Sequence[VideoTask], segments_cfg: Mapping[str, Any], crops: str
    ) -> None:
        self.tasks, self.segments_cfg, self.crops = list(tasks), dict(segments_cfg), crops

    def __iter__(self) -> Iterator[ClipBlock]:
        info = get_worker_info()
        mine = self.tasks if info is None else self.tasks[info.id :: info.num_workers]
        for task in mine:
            yield from self._video(task)

    def _video(self, task: VideoTask) -> Iterator[ClipBlock]:
        try:
            n_frames = task.n_frames if task.n_frames is not None else probe(task.path).n_frames
            bounds = segment_bounds(
                n_frames, self.segments_cfg["length"], self.segments_cfg["keep_last_partial"]
            )
            frames_of = tuple(end - start for start, end in bounds)
            if not bounds:
                yield ClipBlock(task.pos, 0, None, frames_of, last=True)
                return
            for first in range(0, len(bounds), READ_SEGMENTS):
                block = bounds[first : first + READ_SEGMENTS]
                picks = [clip_frame_indices(s, e) for s, e in block]
                wanted = sorted({i for p in picks for i in p})
                at = {frame: k for k, frame in enumerate(wanted)}
                crops = i3d_crops(read_frames(task.path, wanted), self.crops)
                order = torch.tensor([[at[i] for i in p] for p in picks])  # [segments, 16]
                clips = crops[order].permute(0, 2, 1, 3, 4, 5).contiguous()  # [s, K, 16, 3, S, S]
                yield ClipBlock(
                    task.pos,
                    first,
                    clips,
                    frames_of if first == 0 else (),
                    last=first + READ_SEGMENTS >= len(bounds),
                )
        except VideoError as exc:
            yield ClipBlock(task.pos, 0, None, error=exc.reason, last=True)


def _as_is(block: ClipBlock) -> ClipBlock:
    return block


def extract_clips(
    tasks: Sequence[VideoTask],
    extractor: str,
    network: nn.Module,
    segments_cfg: Mapping[str, Any],
    features_cfg: Mapping[str, Any],
    batch_size: int,
    workers: int,
    device: torch.device,
) -> Iterator[VideoFeatures]:
    """I3D features of every task's video ([crops * segments, D], crop-major), in the order
    videos finish."""
    module = network_module(extractor)
    n_crops = CROPS[features_cfg["crops"]]
    dtype = autocast_dtype(features_cfg["precision"], device)
    network = network.to(device).eval()
    dataset = SegmentClips(tasks, segments_cfg, features_cfg["crops"])
    loader = DataLoader(
        dataset,
        batch_size=None,
        num_workers=workers,
        collate_fn=_as_is,
        pin_memory=device.type == "cuda",
        prefetch_factor=2 if workers else None,
    )
    dim = NETWORKS[extractor].dim
    videos: dict[int, tuple[np.ndarray, tuple[int, ...]]] = {}
    with (
        torch.inference_mode(),
        tqdm(desc=f"{extractor} features", unit="clip", mininterval=5.0) as bar,
    ):
        for block in loader:
            if block.error is not None:
                videos.pop(block.pos, None)
                yield VideoFeatures(block.pos, None, [], [], n_crops, error=block.error)
                continue
            if block.segment_frames or block.pos not in videos:
                n = len(block.segment_frames)
                videos[block.pos] = (np.zeros((n_crops, n, dim), np.float32), block.segment_frames)
            out, frames = videos[block.pos]
            if block.clips is not None:
                s, k = block.clips.shape[:2]
                flat = block.clips.flatten(0, 1)  # [s K, 16, 3, S, S], segment-major
                feats = []
                for start in range(0, len(flat), batch_size):
                    x = module.normalize_clips(flat[start : start + batch_size].to(device))
                    if dtype is not None:
                        with torch.autocast(device.type, dtype=dtype):
                            y = network.features(x)
                    else:
                        y = network.features(x)
                    feats.append(y.float().cpu())
                    bar.update(len(x))
                values = torch.cat(feats).view(s, k, dim).transpose(0, 1).numpy()
                out[:, block.first : block.first + s] = values
            if block.last:
                del videos[block.pos]
                counts = [CLIP_FRAMES] * len(frames)
                features = out.reshape(n_crops * len(frames), dim) if frames else None
                yield VideoFeatures(block.pos, features, counts, list(frames), n_crops)

"""The one video reader (decord) and writer (imageio-ffmpeg) used by every stage.

A video is a video file, or a folder of its frames as images (ShanghaiTech's test set
ships as JPEG folders): `probe` and `read_frames` take either.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synthvad.io.atomic import atomic_path

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


class VideoError(RuntimeError):
    """A video that cannot be opened or decoded; the message names the file."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass(frozen=True)
class VideoInfo:
    n_frames: int
    fps: float
    width: int
    height: int


def _natural_key(name: str) -> list[int | str]:
    """Sort 2.jpg before 10.jpg: frame folders are not always zero-padded."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def frame_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The image files of a frame folder, in frame order."""
    files = [p for p in Path(folder).iterdir() if p.suffix.lower() in FRAME_SUFFIXES]
    return sorted(files, key=lambda p: _natural_key(p.name))


class _FrameFolder:
    """A folder of frame images, read like a video."""

    def __init__(self, folder: Path) -> None:
        self.files = frame_files(folder)
        self.fps = float("nan")  # a folder of images has no frame rate

    def __len__(self) -> int:
        return len(self.files)

    def batch(self, indices: Sequence[int]) -> np.ndarray:
        from PIL import Image

        frames = []
        for i in indices:
            with Image.open(self.files[i]) as image:
                frames.append(np.asarray(image.convert("RGB")))
        sizes = {f.shape for f in frames}
        if len(sizes) > 1:
            raise ValueError(f"frames of different sizes {sorted(sizes)}")
        return np.stack(frames)


class _VideoFile:
    """A decord reader behind the same two calls as _FrameFolder."""

    def __init__(self, reader) -> None:
        self.reader = reader
        self.fps = float(reader.get_avg_fps())

    def __len__(self) -> int:
        return len(self.reader)

    def batch(self, indices: Sequence[int]) -> np.ndarray:
        return self.reader.get_batch(list(indices)).asnumpy()


def _open(path: str | os.PathLike[str]) -> _VideoFile | _FrameFolder:
    import decord

    if Path(path).is_dir():
        return _FrameFolder(Path(path))
    if not Path(path).is_file():
        raise VideoError(path, "file not found")
    try:
        return _VideoFile(decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1))
    except Exception as exc:  # decord raises its own DECORDError, or RuntimeError
        raise VideoError(path, f"cannot be decoded ({type(exc).__name__}: {exc})") from exc


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    """Frame count, frame rate (NaN for a frame folder) and size; decodes the last frame so
    truncation is caught."""
    reader = _open(path)
    n = len(reader)
    if n == 0:
        raise VideoError(path, "no frames")
    try:
        last = reader.batch([n - 1])[0]
    except Exception as exc:
        raise VideoError(path, f"frame {n - 1} cannot be decoded ({exc})") from exc
    height, width = last.shape[:2]
    return VideoInfo(n_frames=n, fps=reader.fps, width=width, height=height)


def read_frames(path: str | os.PathLike[str], indices: Sequence[int] | None = None) -> np.ndarray:
    """Decode the given frame indices (all when None) as uint8 [N, H, W, 3] RGB, from a
    video file or a frame folder."""
    reader = _open(path)
    idx = list(range(len(reader))) if indices is None else [int(i) for i in indices]
    if not idx:
        raise VideoError(path, "no frame indices requested")
    if min(idx) < 0 or max(idx) >= len(reader):
        raise VideoError(path, f"frame index out of range 0..{len(reader) - 1}")
    try:
        return reader.batch(idx)
    except Exception as exc:
        raise VideoError(path, f"frames cannot be decoded ({exc})") from exc


def write_video(
    path: str | os.PathLike[str], frames: Iterable[np.ndarray] | np.ndarray, fps: float
) -> int:
    """Encode RGB uint8 frames as H.264 mp4 (atomic); returns the number of frames."""
    import imageio_ffmpeg

    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise ValueError(f"{path}: no frames to write")
    height, width = first.shape[:2]
    if height % 2 or width % 2:
        raise ValueError(f"{path}: H.264 needs even frame sizes, got {width}x{height}")
    count = 0
    with atomic_path(path) as tmp:
        writer = imageio_ffmpeg.write_frames(
            str(tmp),
            (width, height),
            fps=fps,
            codec="libx264",
            pix_fmt_out="yuv420p",
            macro_block_size=2,
            # One x264 thread: threaded x264 output depends on thread timing under CPU
            # load (measured: the same frames gave 3 different files across 24 encodes),
            # which changed demo features and so detector results between identical runs.
            output_params=["-crf", "18", "-preset", "veryfast", "-threads", "1", "-f", "mp4"],
            ffmpeg_log_level="error",
        )
        writer.send(None)
        for frame in _chain(first, it):
            if frame.shape[:2] != (height, width) or frame.dtype != np.uint8:
                raise ValueError(f"{path}: frame {count} is {frame.shape} {frame.dtype}")
            writer.send(np.ascontiguousarray(frame[..., :3]).tobytes())
            count += 1
        writer.close()
    return count


def _chain(first: np.ndarray, rest: Iterable[np.ndarray]) -> Iterable[np.ndarray]:
    yield first
    yield from rest

"""What the benchmark parsers share: their error, one video's labels, file reading, lookup."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from synthvad.io.video import FRAME_SUFFIXES

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v", ".wmv")


class DatasetError(ValueError):
    """An annotation file or video that does not fit its benchmark; the message names it."""


@dataclass(frozen=True)
class VideoLabel:
    """What the official files say about one video."""

    label: int  # 0 normal, 1 abnormal (video level)
    cls: str
    scene: str
    intervals: list[tuple[int, int]] = field(default_factory=list)  # [start, end) frames
    annotated_frames: int | None = None  # frames a per-frame mask covers (ShanghaiTech)


@dataclass(frozen=True)
class ListedVideo:
    """A video of the official split lists: its id, split and where it was found."""

    video_id: str
    split: str
    path: Path


def read_lines(path: str | os.PathLike[str]) -> list[tuple[int, str]]:
    """(line number, stripped text) of the non-blank lines; a last line without a
    newline and Windows line ends are fine."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    text = path.read_text(encoding="utf-8-sig")
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def interval_pairs(
    numbers: Sequence[int], where: str, none: int | None = None
) -> list[tuple[int, int]]:
    """[start, end) pairs from a flat start, end, start, end... list; `none` marks a
    pair left empty (UCF-Crime writes -1 -1)."""
    if len(numbers) % 2:
        raise DatasetError(f"{where}: odd number of frame numbers {list(numbers)}")
    pairs = []
    for start, end in zip(numbers[::2], numbers[1::2], strict=True):
        if none is not None and (start == none or end == none):
            if start != end:
                raise DatasetError(f"{where}: half-empty interval ({start}, {end})")
            continue
        if not 0 <= start < end:
            raise DatasetError(f"{where}: bad interval ({start}, {end})")
        pairs.append((start, end))
    return pairs


GT_PADDING = ("repeat_last", "normal")


def pad_intervals(
    intervals: list[tuple[int, int]], annotated: int | None, n_frames: int, padding: str
) -> list[tuple[int, int]]:
    """Intervals over the `n_frames` the features cover when a per-frame annotation of
    `annotated` frames ends inside the last segment: `repeat_last` continues the last
    label to n_frames (RTFM's gt-sh.npy, behind published ShanghaiTech numbers),
    `normal` leaves the padded frames normal."""
    if padding not in GT_PADDING:
        raise ValueError(f"gt padding {padding!r} is not one of {GT_PADDING}")
    if padding == "normal" or annotated is None or n_frames <= annotated:
        return list(intervals)
    return [(s, n_frames if e == annotated else e) for s, e in intervals]


def intervals_from_mask(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) runs of the 1s of a 0/1 per-frame mask."""
    padded = np.concatenate([[0], (np.asarray(mask) > 0).astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(padded))
    return [(int(s), int(e)) for s, e in zip(edges[::2], edges[1::2], strict=True)]


def find_media(root: str | os.PathLike[str]) -> dict[str, Path]:
    """Every video under `root` by name: video files by stem, frame folders (a folder
    holding images) by folder name. A frame folder wins over a video file of the same
    name (frame-level masks count its frames); two files of one name are an error."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: video folder not found (config key 'data.root')")
    files: dict[str, Path] = {}
    folders: dict[str, Path] = {}
    for dirpath, _, filenames in os.walk(root, followlinks=True):
        here = Path(dirpath)
        if any(Path(f).suffix.lower() in FRAME_SUFFIXES for f in filenames):
            _add(folders, here.name, here)
        for name in filenames:
            if Path(name).suffix.lower() in VIDEO_SUFFIXES:
                _add(files, Path(name).stem, here / name)
    return {**files, **folders}


def _add(found: dict[str, Path], name: str, path: Path) -> None:
    if name in found:
        raise DatasetError(f"two videos named {name!r}: {found[name]} and {path}")
    found[name] = path

"""XD-Violence (Wu et al. 2020): labels in the file names, test intervals in annotations.txt.

A name ends in `label_<codes>`: `A` is normal, B1 fighting, B2 shooting, B4 riot, B5
abuse, B6 car accident, G explosion (up to three codes, `0` = none). annotations.txt
lists each violent test video followed by start/end frame pairs, read as [start, end).
The release has no list files: the split is the folder (data.split_dirs).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from synthvad.datasets.common import (
    VIDEO_SUFFIXES,
    DatasetError,
    ListedVideo,
    VideoLabel,
    interval_pairs,
    read_lines,
)

ANNOTATIONS = "annotations.txt"
FORM_A_FILES = (ANNOTATIONS,)
FORM_B_FILES = (ANNOTATIONS,)
CLASSES = {
    "A": "Normal",
    "B1": "Fighting",
    "B2": "Shooting",
    "B4": "Riot",
    "B5": "Abuse",
    "B6": "Car accident",
    "G": "Explosion",
}
_LABEL = re.compile(r"label_([A-Z0-9-]+)$")


def label_codes(video_id: str) -> list[str]:
    """The class codes of a name, e.g. ..._label_B2-G-0 -> [B2, G]."""
    match = _LABEL.search(video_id)
    if not match:
        raise DatasetError(f"video {video_id!r} has no XD-Violence label_<codes> suffix")
    codes = [c for c in match.group(1).split("-") if c != "0"]
    unknown = [c for c in codes if c not in CLASSES]
    if not codes or unknown:
        raise DatasetError(f"video {video_id!r}: unknown label codes {unknown or codes}")
    return codes


def parse_annotations(path: str | Path) -> dict[str, list[tuple[int, int]]]:
    """video id -> [start, end) intervals from annotations.txt."""
    out: dict[str, list[tuple[int, int]]] = {}
    for n, line in read_lines(path):
        name, *numbers = line.split()
        where = f"{path}:{n}"
        name = name.removesuffix(".mp4")
        try:
            frames = [int(x) for x in numbers]
        except ValueError:
            raise DatasetError(f"{where}: frame numbers must be integers: {line!r}") from None
        if not frames:
            raise DatasetError(f"{where}: video {name!r} has no frame numbers")
        if name in out:
            raise DatasetError(f"{where}: video {name!r} annotated twice")
        out[name] = interval_pairs(frames, where)
    return out


class Annotations:
    def __init__(self, annotations: str | Path) -> None:
        self.path = Path(annotations) / ANNOTATIONS
        self.intervals = parse_annotations(self.path)

    def label(self, video_id: str, split: str) -> VideoLabel:
        codes = label_codes(video_id)
        abnormal = codes != ["A"]
        if "A" in codes and abnormal:
            raise DatasetError(f"video {video_id!r} is labelled both normal and violent")
        intervals: list[tuple[int, int]] = []
        if split == "test":
            annotated = video_id in self.intervals
            if abnormal and not annotated:
                raise DatasetError(f"violent test video {video_id!r} is not in {self.path}")
            if annotated and not abnormal:
                raise DatasetError(f"normal test video {video_id!r} has intervals in {self.path}")
            intervals = self.intervals.get(video_id, [])
        # Clips cut from one source video share its scenes: the part before `__`.
        return VideoLabel(int(abnormal), CLASSES[codes[0]], video_id.split("__")[0], intervals)


def load(annotations: str | Path) -> Annotations:
    return Annotations(annotations)


def list_videos(data_cfg: dict[str, Any]) -> list[ListedVideo]:
    """Every video file below data.root/<split_dirs.train> and <split_dirs.test>."""
    root = Path(data_cfg["root"])
    videos = []
    for split in ("train", "test"):
        folder = root / data_cfg["split_dirs"][split]
        if not folder.is_dir():
            raise DatasetError(f"{folder}: {split} folder not found (data.split_dirs.{split})")
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() in VIDEO_SUFFIXES:
                videos.append(ListedVideo(path.stem, split, path))
    return videos

"""UCF-Crime (Sultani et al. 2018): official split lists and temporal annotation.

Anomaly_Train.txt / Anomaly_Test.txt list videos relative to the dataset root
(`Abuse/Abuse001_x264.mp4`); Temporal_Anomaly_Annotation.txt gives every test video's
class and two frame intervals (`-1 -1` = none), read as [start, end).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from synthvad.datasets.common import (
    DatasetError,
    ListedVideo,
    VideoLabel,
    find_media,
    interval_pairs,
    read_lines,
)

TRAIN_LIST = "Anomaly_Train.txt"
TEST_LIST = "Anomaly_Test.txt"
TEMPORAL = "Temporal_Anomaly_Annotation.txt"
FORM_A_FILES = (TRAIN_LIST, TEST_LIST, TEMPORAL)
FORM_B_FILES = (TEMPORAL,)
NORMAL = "Normal"
_ABNORMAL_NAME = re.compile(r"^([A-Za-z]+?)\d+_x264$")


def video_class(video_id: str) -> str:
    """The class a UCF-Crime file name encodes: Normal_Videos_003_x264 -> Normal,
    RoadAccidents001_x264 -> RoadAccidents."""
    if video_id.startswith("Normal_Videos"):
        return NORMAL
    match = _ABNORMAL_NAME.match(video_id)
    if not match:
        raise DatasetError(f"video {video_id!r} is not a UCF-Crime name like Abuse001_x264")
    return match.group(1)


def parse_temporal(path: str | Path) -> dict[str, tuple[str, list[tuple[int, int]]]]:
    """video id -> (class, [start, end) intervals) from Temporal_Anomaly_Annotation.txt."""
    out: dict[str, tuple[str, list[tuple[int, int]]]] = {}
    for n, line in read_lines(path):
        parts = line.split()
        where = f"{path}:{n}"
        if len(parts) != 6:
            raise DatasetError(f"{where}: expected name, class and 4 frame numbers: {line!r}")
        name, cls = parts[0].removesuffix(".mp4"), parts[1]
        try:
            numbers = [int(p) for p in parts[2:]]
        except ValueError:
            raise DatasetError(f"{where}: frame numbers must be integers: {line!r}") from None
        intervals = interval_pairs(numbers, where, none=-1)
        if (cls == NORMAL) == bool(intervals):
            raise DatasetError(f"{where}: class {cls} but {len(intervals)} intervals")
        if name in out:
            raise DatasetError(f"{where}: video {name!r} annotated twice")
        out[name] = (cls, intervals)
    return out


def parse_split_list(path: str | Path) -> list[tuple[str, str]]:
    """(video id, listed relative path) per line of Anomaly_Train.txt / Anomaly_Test.txt."""
    return [(Path(line).stem, line) for _, line in read_lines(path)]


class Annotations:
    """Labels of UCF-Crime videos from their names and the temporal annotation."""

    def __init__(self, annotations: str | Path) -> None:
        self.temporal_path = Path(annotations) / TEMPORAL
        self.temporal = parse_temporal(self.temporal_path)

    def label(self, video_id: str, split: str) -> VideoLabel:
        cls = video_class(video_id)
        intervals: list[tuple[int, int]] = []
        if split == "test":
            if video_id not in self.temporal:
                raise DatasetError(f"test video {video_id!r} is not in {self.temporal_path}")
            annotated, intervals = self.temporal[video_id]
            if annotated != cls:
                raise DatasetError(
                    f"test video {video_id!r}: {self.temporal_path} says class {annotated}"
                )
        # Every UCF-Crime video comes from its own camera.
        return VideoLabel(int(cls != NORMAL), cls, video_id, intervals)


def load(annotations: str | Path) -> Annotations:
    return Annotations(annotations)


def list_videos(data_cfg: dict[str, Any]) -> list[ListedVideo]:
    """The official train and test lists, each video found under data.root: at its
    listed path, else by file name anywhere below (the release spreads videos over
    several part folders)."""
    root, annotations = Path(data_cfg["root"]), Path(data_cfg["annotations"])
    media: dict[str, Path] | None = None
    videos = []
    for split, name in (("train", TRAIN_LIST), ("test", TEST_LIST)):
        for video_id, rel in parse_split_list(annotations / name):
            path = root / rel
            if not path.exists():
                media = find_media(root) if media is None else media
                path = media.get(video_id, path)
            videos.append(ListedVideo(video_id, split, path))
    return videos

"""ShanghaiTech Campus, weakly supervised split (Zhong et al. 2019).

SH_Train.txt / SH_Test.txt list video names (`01_0014`); test_frame_mask/{name}.npy
holds a 0/1 per frame for each abnormal video (train and test). A video without a mask
is normal: all its frames are 0. Videos are files or folders of JPEG frames (the
original release ships its test set as frames).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from synthvad.datasets.common import (
    DatasetError,
    ListedVideo,
    VideoLabel,
    find_media,
    intervals_from_mask,
    read_lines,
)

TRAIN_LIST = "SH_Train.txt"
TEST_LIST = "SH_Test.txt"
MASKS = "test_frame_mask"
FORM_A_FILES = (TRAIN_LIST, TEST_LIST, MASKS)
FORM_B_FILES = (MASKS,)
# Videos of the original test set (4-digit number) are the abnormal ones of the weak split.
_ORIGINAL_TEST = re.compile(r"^\d{2}_\d{4}$")


def parse_list(path: str | Path) -> list[str]:
    names = [line.removesuffix(".avi").removesuffix(".npy") for _, line in read_lines(path)]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DatasetError(f"{path}: video {dupes[0]!r} listed twice")
    return names


def read_mask(path: Path) -> np.ndarray:
    try:
        mask = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: not a readable .npy mask ({exc})") from exc
    if mask.ndim != 1 or not np.isin(mask, (0, 1)).all():
        raise DatasetError(f"{path}: expected a 1-D mask of 0/1 per frame, got {mask.shape}")
    return mask


class Annotations:
    """Labels of ShanghaiTech videos from the frame masks."""

    def __init__(self, annotations: str | Path) -> None:
        self.mask_dir = Path(annotations) / MASKS
        if not self.mask_dir.is_dir():
            raise DatasetError(f"{self.mask_dir}: mask folder not found")
        self.masks = {p.stem: p for p in self.mask_dir.glob("*.npy")}

    def label(self, video_id: str, split: str) -> VideoLabel:
        scene = video_id.split("_")[0]
        if video_id not in self.masks:
            if _ORIGINAL_TEST.match(video_id):
                raise DatasetError(
                    f"video {video_id!r} is abnormal in the weak split but has no mask "
                    f"{self.mask_dir / (video_id + '.npy')}"
                )
            return VideoLabel(0, "Normal", scene)
        mask = read_mask(self.masks[video_id])
        intervals = intervals_from_mask(mask)
        if not intervals:
            return VideoLabel(0, "Normal", scene, annotated_frames=len(mask))
        # Training labels are weak (video level): only test intervals are used.
        kept = intervals if split == "test" else []
        return VideoLabel(1, "Anomaly", scene, kept, annotated_frames=len(mask))


def load(annotations: str | Path) -> Annotations:
    return Annotations(annotations)


def list_videos(data_cfg: dict[str, Any]) -> list[ListedVideo]:
    """The weak-split lists, each video found by name under data.root as a video file
    or a folder of frames."""
    root, annotations = Path(data_cfg["root"]), Path(data_cfg["annotations"])
    media = find_media(root)
    videos = []
    for split, name in (("train", TRAIN_LIST), ("test", TEST_LIST)):
        for video_id in parse_list(annotations / name):
            videos.append(ListedVideo(video_id, split, media.get(video_id, root / video_id)))
    return videos

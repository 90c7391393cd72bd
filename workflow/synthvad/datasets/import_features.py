"""Form B of stage 0: pre-extracted `.npy` features of a benchmark -> the feature shard
contract (synthvad.io.shards), plus index and ground truth, with no video at all.

Layouts (data.features.layout, or detected):
- `t_d`: one [T, D] file per video;
- `t_crop_d` / `crop_t_d`: one 10-crop file per video, [T, C, D] (RTFM) or [C, T, D]
  (GV-VAD/LAP);
- `crop_files`: one [T, D] file per crop, `name__0.npy .. name__9.npy` (UR-DMU,
  VadCLIP, PEL4VAD); a list may name each crop file or only `name.npy`.
Lists: a `.list`/`.txt` path per line (RTFM), or a CSV with a `path` column (VadCLIP).
GV-VAD's training lists also name its generated clips, told apart by path
(data.features.generated_pattern): they become synthetic videos of method `imported`.

Each of the T rows is one `segments.length`-frame segment, so a video counts exactly
T x length frames; annotated frames past that are clipped (with a warning).
"""

from __future__ import annotations

import glob
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from synthvad.datasets import benchmark
from synthvad.datasets.common import DatasetError, VideoLabel, pad_intervals, read_lines
from synthvad.index import write_index
from synthvad.io.shards import shard_writer

log = logging.getLogger(__name__)

MAX_CROPS = 10  # TenCrop; a constant axis larger than this is not a crop axis
_CROP_FILE = re.compile(r"^(?P<name>.+)__(?P<crop>\d+)$")
IMPORTED_METHOD = "imported"  # synthetic clips that came with the features (GV-VAD's lists)


class FeatureImportError(ValueError):
    """Feature files that cannot be imported; the message names the file."""


@dataclass
class FeatureVideo:
    """One video's feature files: {crop: file} for crop files, {None: file} otherwise.
    `generated`: a generated clip of a GV-VAD list, listed at line `position`."""

    video_id: str
    split: str
    files: dict[int | None, Path]
    generated: bool = False
    position: int = 0


def read_list(path: str | Path) -> list[tuple[str, str]]:
    """(where, entry) of a list file: `.csv` with a `path` column, else one path a line."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        if not path.is_file():
            raise FeatureImportError(f"{path}: list file not found")
        table = pd.read_csv(path, dtype=str)
        if "path" not in table.columns:
            raise FeatureImportError(f"{path}: a CSV list needs a `path` column")
        entries = table["path"].dropna().str.strip()
        return [(f"{path}:{i + 2}", p) for i, p in entries.items() if p]
    try:
        return [(f"{path}:{n}", line) for n, line in read_lines(path)]
    except DatasetError as exc:
        raise FeatureImportError(f"{path}: list file not found") from exc


class _Resolver:
    """A listed path: as written (relative to data.features.root, else to the list's
    folder); a path that is not there is looked up by file name anywhere below the root
    (lists shipped with the anchors carry their authors' absolute paths)."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self.by_name: dict[str, Path] | None = None

    def __call__(self, entry: str, list_path: Path) -> Path:
        # Lists written on Windows (RTFM's: G:\UCF_Test_ten_crop_i3d\X_i3d.npy) separate
        # folders with backslashes, which no feature file name contains.
        entry = entry.replace("\\", "/")
        path = (self.root or list_path.parent) / entry
        if path.exists() or self.root is None:
            return path
        if self.by_name is None:
            self.by_name = self._index(self.root)
        name = Path(entry).name
        return self.by_name.get(name, self.root / name)

    @staticmethod
    def _index(root: Path) -> dict[str, Path]:
        """File name -> path below root; `name.npy` also stands for its crop files
        `name__<c>.npy` (a path beside them, for _expand_crops)."""
        found: dict[str, Path] = {}
        for file in sorted(root.rglob("*.npy")):
            if file.name in found and found[file.name].exists():
                raise FeatureImportError(
                    f"two feature files named {file.name}: {found[file.name]} and {file}"
                )
            found[file.name] = file
            match = _CROP_FILE.match(file.stem)
            if match:
                found.setdefault(f"{match['name']}.npy", file.parent / f"{match['name']}.npy")
        return found


def _video_name(path: Path, suffix: str, lenient: bool = False) -> tuple[str, int | None]:
    """(video id, crop) from a feature file name: `name{suffix}__3.npy` -> (name, 3).
    `lenient`: a name without the suffix is kept whole (generated clips)."""
    stem, crop = path.stem, None
    match = _CROP_FILE.match(stem)
    if match:
        stem, crop = match["name"], int(match["crop"])
    if suffix:
        if not stem.endswith(suffix) and lenient:
            return stem, crop
        if not stem.endswith(suffix):
            raise FeatureImportError(
                f"{path}: name does not end in data.features.name_suffix {suffix!r}"
            )
        stem = stem.removesuffix(suffix)
    return stem, crop


def collect(features_cfg: dict[str, Any]) -> list[FeatureVideo]:
    """The videos of the train and test lists with their files; a listed file that is
    missing, listed twice, or a video in both lists is an error naming it."""
    resolve = _Resolver(Path(features_cfg["root"]) if features_cfg.get("root") else None)
    suffix = features_cfg.get("name_suffix", "")
    pattern = features_cfg.get("generated_pattern")
    generated_path = re.compile(pattern) if pattern else None
    videos: dict[str, FeatureVideo] = {}
    for split in ("train", "test"):
        list_path = Path(features_cfg[f"{split}_list"])
        for position, (where, entry) in enumerate(read_list(list_path)):
            generated = bool(generated_path and generated_path.search(entry))
            if generated and split == "test":
                raise FeatureImportError(
                    f"{where}: {entry!r} matches data.features.generated_pattern, but the "
                    "test list is real videos only"
                )
            path = resolve(entry, list_path)
            files = [path] if path.is_file() else _expand_crops(path, where, entry)
            for file in files:
                video_id, crop = _video_name(file, suffix, lenient=generated)
                if generated:  # clip names repeat across description folders
                    folder = Path(entry.replace("\\", "/")).parent.name
                    video_id = f"{folder}-{video_id}"
                video = videos.setdefault(
                    video_id, FeatureVideo(video_id, split, {}, generated, position)
                )
                if video.split != split:
                    raise FeatureImportError(f"{file}: video {video_id!r} is in both lists")
                if video.files.get(crop) == file:
                    continue  # `X.npy` stood for X__0..X__9, which the list also names
                if crop in video.files:
                    raise FeatureImportError(f"{where}: {file} listed twice")
                video.files[crop] = file
    if not videos:
        raise FeatureImportError("the feature lists name no file")
    for video in videos.values():
        _pel4vad_crop_zero(video)
    return list(videos.values())


def _pel4vad_crop_zero(video: FeatureVideo) -> None:
    """PEL4VAD names crop 0 `X.npy` beside `X__1.npy .. X__9.npy`: the per-video file is
    crop 0 when the crop files start at 1. Any other mix of the two is an error."""
    crops = sorted(c for c in video.files if c is not None)
    if None not in video.files or not crops:
        return
    if crops != list(range(1, len(crops) + 1)):
        raise FeatureImportError(
            f"{video.files[None]}: video {video.video_id!r} has both a per-video file and "
            f"crop files {crops}"
        )
    crop_files = {0: video.files.pop(None), **video.files}
    video.files.clear()
    video.files.update(crop_files)


def _expand_crops(path: Path, where: str, entry: str) -> list[Path]:
    """`name.npy` listed for crop files `name__0.npy, name__1.npy, ...` beside it."""
    crops = {}
    for file in path.parent.glob(f"{glob.escape(path.stem)}__*.npy"):
        match = _CROP_FILE.match(file.stem)
        if match and match["name"] == path.stem:
            crops[int(match["crop"])] = file
    if not crops:
        raise FeatureImportError(f"{where}: listed feature file {entry!r} not found ({path})")
    return [crops[c] for c in sorted(crops)]


def _shape(path: Path) -> tuple[int, ...]:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise FeatureImportError(f"{path}: not a readable .npy array ({exc})") from exc
    return tuple(array.shape)


def detect_layout(videos: list[FeatureVideo], shapes: dict[Path, tuple[int, ...]]) -> str:
    """The one layout all files share; ambiguous or mixed input is an error."""
    crop_files = [v for v in videos if None not in v.files]
    if crop_files:
        if len(crop_files) != len(videos):
            single = next(v for v in videos if None in v.files)
            raise FeatureImportError(
                f"{single.files[None]}: one file per video, but {crop_files[0].video_id!r} "
                "has one file per crop; use one layout"
            )
        return "crop_files"
    ndims = {len(s) for s in shapes.values()}
    if ndims == {2}:
        return "t_d"
    if ndims != {3}:
        first = {len(s): p for p, s in shapes.items()}
        raise FeatureImportError(
            f"feature files of different ranks, e.g. {first[min(first)]} "
            f"{shapes[first[min(first)]]} and {first[max(first)]} {shapes[first[max(first)]]}"
        )
    axis0 = {s[0] for s in shapes.values()}
    axis1 = {s[1] for s in shapes.values()}
    crops_first = len(axis0) == 1 and min(axis0) <= MAX_CROPS
    crops_second = len(axis1) == 1 and min(axis1) <= MAX_CROPS
    if crops_first != crops_second:
        return "crop_t_d" if crops_first else "t_crop_d"
    path, shape = next(iter(shapes.items()))
    raise FeatureImportError(
        f"{path}: shape {shape} is ambiguous: cannot tell the crop axis from the time axis "
        "over all files; set data.features.layout to t_crop_d or crop_t_d"
    )


def _crops(video: FeatureVideo, shape: tuple[int, ...], layout: str) -> list[int]:
    """The crop ids a video's files hold (`shape`: that of any of its files)."""
    if layout == "crop_files":
        return sorted(c for c in video.files if c is not None)
    return list(range({"t_d": 1, "t_crop_d": shape[1], "crop_t_d": shape[0]}[layout]))


def _check_shapes(
    videos: list[FeatureVideo], shapes: dict[Path, tuple[int, ...]], layout: str
) -> None:
    """Each file fits the layout, all share D and crops, the crops of a video share T."""
    want_ndim = 3 if layout in ("t_crop_d", "crop_t_d") else 2
    first_dim: tuple[Path, int] | None = None
    first_crops: tuple[Path, list[int]] | None = None
    for video in videos:
        lengths: dict[Path, int] = {}
        for crop, path in video.files.items():
            shape = shapes[path]
            if len(shape) != want_ndim:
                raise FeatureImportError(f"{path}: shape {shape} does not fit layout {layout}")
            if (layout == "crop_files") != (crop is not None):
                raise FeatureImportError(
                    f"{path}: layout {layout} "
                    + ("needs" if crop is None else "takes no")
                    + " per-crop files name__<crop>.npy"
                )
            first_dim = first_dim or (path, shape[-1])
            if shape[-1] != first_dim[1]:
                raise FeatureImportError(
                    f"{path}: feature size {shape[-1]}, but {first_dim[0]} has {first_dim[1]}"
                )
            lengths[path] = shape[1] if layout == "crop_t_d" else shape[0]
        (short, t_min), (long, t_max) = (
            min(lengths.items(), key=lambda kv: kv[1]),
            max(lengths.items(), key=lambda kv: kv[1]),
        )
        if t_min != t_max:
            raise FeatureImportError(f"{short}: {t_min} segments, but crop file {long} has {t_max}")
        if t_min == 0:
            raise FeatureImportError(f"{short}: no segments")
        crops = _crops(video, shapes[short], layout)
        first_crops = first_crops or (short, crops)
        if crops != first_crops[1]:
            raise FeatureImportError(
                f"{short}: crops {crops}, but {first_crops[0]} has crops {first_crops[1]}"
            )


def load_crops(
    video: FeatureVideo, layout: str, shape: tuple[int, ...], selected: list[int] | None
) -> tuple[list[int], np.ndarray]:
    """(crop ids, float32 [C, T, D]) of one video's selected crops (all when None)."""
    crops = _crops(video, shape, layout) if selected is None else list(selected)
    if layout == "crop_files":
        missing = [c for c in crops if c not in video.files]
        if missing:
            raise FeatureImportError(
                f"{next(iter(video.files.values()))}: video {video.video_id!r} has no crop "
                f"files for crops {missing} (data.features.crops)"
            )
        arrays = [(video.files[c], np.load(video.files[c], allow_pickle=False)) for c in crops]
    else:
        path = video.files[None]
        array = np.load(path, allow_pickle=False)
        if layout == "t_d":
            array = array[None]
        elif layout == "t_crop_d":
            array = array.transpose(1, 0, 2)
        if max(crops) >= len(array):
            raise FeatureImportError(
                f"{path}: {len(array)} crops, data.features.crops asks for {crops}"
            )
        arrays = [(path, array[c]) for c in crops]
    for path, array in arrays:
        if not np.isfinite(array).all():
            raise FeatureImportError(f"{path}: contains NaN or infinite values")
    return crops, np.stack([a for _, a in arrays]).astype(np.float32, copy=False)


def _clip_intervals(
    video_id: str, intervals: list[tuple[int, int]], n_frames: int
) -> list[tuple[int, int]]:
    kept = [(s, min(e, n_frames)) for s, e in intervals if s < n_frames]
    if kept != intervals:
        log.warning(
            "video %s: annotation %s reaches past its %d feature frames; clipped to %s",
            video_id,
            intervals,
            n_frames,
            kept,
        )
    return kept


def _shard_rows(
    video: FeatureVideo, info: VideoLabel, feats: np.ndarray, crop_ids: list[int], length: int
) -> pd.DataFrame:
    n_crops, n_segments = feats.shape[:2]
    return pd.DataFrame(
        {
            "video_id": video.video_id,
            "split": video.split,
            "source": "synthetic" if video.generated else "real",
            "method": IMPORTED_METHOD if video.generated else None,
            "label": info.label,
            "class": info.cls,
            "segment": np.tile(np.arange(n_segments), n_crops),
            "n_frames": length,
            "crop": np.repeat(crop_ids, n_segments),
        }
    )


def _generated_labels(
    videos: list[FeatureVideo], labels: dict[str, VideoLabel]
) -> dict[str, VideoLabel]:
    """GV-VAD's rule for its generated clips: its training lists hold abnormal videos
    first, then normal ones, so a clip listed before the first real normal video is
    abnormal, any later one normal."""
    real_normal = [
        v.position
        for v in videos
        if not v.generated and v.split == "train" and labels[v.video_id].label == 0
    ]  # noqa: E501
    first_normal = min(real_normal, default=None)
    if first_normal is None:
        raise FeatureImportError(
            "generated clips are labelled by their place before or after the first real "
            "normal video of the train list, which has none"
        )
    out = {}
    for video in videos:
        if video.generated:
            label = int(video.position < first_normal)
            out[video.video_id] = VideoLabel(label, "Abnormal" if label else "Normal", "generated")
    return out


def _labelled(
    videos: list[FeatureVideo], annotations: Any
) -> Iterator[tuple[FeatureVideo, VideoLabel]]:
    real = {}
    for video in videos:
        if video.generated:
            continue
        try:
            real[video.video_id] = annotations.label(video.video_id, video.split)
        except DatasetError as exc:
            raise FeatureImportError(
                f"{next(iter(video.files.values()))}: {exc} (if the file names carry a "
                "suffix after the video name, set data.features.name_suffix; GV-VAD's "
                "generated clips: data.features.generated_pattern)"
            ) from exc
    generated = _generated_labels(videos, real) if any(v.generated for v in videos) else {}
    for video in videos:
        yield video, generated.get(video.video_id) or real[video.video_id]


def import_features(
    data_cfg: dict[str, Any],
    segment_cfg: dict[str, Any],
    out_index: str,
    out_gt: str,
    out_rejected: str,
    out_shard: str,
) -> pd.DataFrame:
    """Validate every listed file, then write the shard, index and ground truth.

    Returns the index.
    """
    fcfg = data_cfg["features"]
    length = int(segment_cfg["length"])
    videos = sorted(collect(fcfg), key=lambda v: (v.split != "train", v.video_id))
    labelled = list(_labelled(videos, benchmark(data_cfg["kind"]).load(data_cfg["annotations"])))
    shapes = {p: _shape(p) for v in videos for p in v.files.values()}
    layout = fcfg.get("layout", "auto")
    if layout == "auto":
        layout = detect_layout(videos, shapes)
    _check_shapes(videos, shapes, layout)
    dim = next(iter(shapes.values()))[-1]
    log.info("%d videos, layout %s, feature size %d", len(videos), layout, dim)

    index_rows, gt_rows = [], []
    with shard_writer(out_shard, dim) as append:
        for video, info in tqdm(labelled, desc="import features", unit="video"):
            shape = shapes[next(iter(video.files.values()))]
            crop_ids, feats = load_crops(video, layout, shape, fcfg.get("crops"))
            n_frames = feats.shape[1] * length
            append(_shard_rows(video, info, feats, crop_ids, length), feats.reshape(-1, dim))
            if video.generated:
                continue  # clips are training data, not benchmark videos: not indexed
            index_rows.append(
                {
                    "video_id": video.video_id,
                    "path": None,
                    "split": video.split,
                    "label": info.label,
                    "class": info.cls,
                    "scene": info.scene,
                    "n_frames": n_frames,
                    "fps": float("nan"),
                    "width": None,
                    "height": None,
                }
            )
            padded = pad_intervals(
                info.intervals, info.annotated_frames, n_frames, fcfg["gt_padding"]
            )
            for start, end in _clip_intervals(video.video_id, padded, n_frames):
                gt_rows.append({"video_id": video.video_id, "start": start, "end": end})

    index = pd.DataFrame(index_rows).astype(
        {"label": "int8", "n_frames": "int64", "width": "Int64", "height": "Int64"}
    )
    gt = pd.DataFrame(gt_rows, columns=["video_id", "start", "end"]).astype(
        {"start": "int64", "end": "int64"}
    )
    rejected = pd.DataFrame(columns=["video_id", "path", "reason"])
    write_index(index, gt, rejected, out_index, out_gt, out_rejected)
    return index

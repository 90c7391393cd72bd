"""The detectors' feature store: shards rewritten once into one flat array file per
shard set, read one video at a time, so that training and scoring memory does not grow
with the data set (UCF-Crime's 10-crop features are about 35 GB as float32).

Layout of a store directory:
- `features.npy`: [rows, D] (float32 or float16), rows sorted by (video_id, crop, segment);
- `videos.parquet`: one row per video: its columns, crops, segments, first row, and the
  frames each segment covers.

A stored video's `features` is a `StoredFeatures`: shape and dtype without reading;
`np.asarray` reads exactly that video's rows with one positioned read (no memory map, so
that nothing read stays counted in the process's resident memory).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from tqdm import tqdm

from synthvad.io.atomic import atomic_dir

log = logging.getLogger(__name__)

STORE_FORMAT = 1
STORE_DTYPES = ("float32", "float16")
META_COLUMNS = ("video_id", "split", "source", "method", "label", "class", "segment", "n_frames", "crop")  # fmt: skip
READ_BATCH_ROWS = 16384
READ_BUFFER_BYTES = 1 << 22

VIDEO_COLUMNS = ("split", "source", "method", "label", "class")  # one value per video


class StoredFeatures:
    """One video's [C, T, D] features in a store file, read on demand as float32.

    `mean_crops` reads the crops and returns their mean ([1, T, D]), computed as the
    in-memory `average_crops` does.
    """

    def __init__(
        self,
        path: str,
        offset: int,
        shape: tuple[int, int, int],
        dtype: str,
        mean_crops: bool = False,
    ) -> None:
        # offset: byte position of the video's first row in the file (header included)
        self.path, self.offset, self.stored_shape, self.dtype_name = path, offset, shape, dtype
        self.mean_crops = mean_crops

    @property
    def shape(self) -> tuple[int, int, int]:
        c, t, d = self.stored_shape
        return (1, t, d) if self.mean_crops else (c, t, d)

    @property
    def ndim(self) -> int:
        return 3

    def averaged(self) -> StoredFeatures:
        return StoredFeatures(self.path, self.offset, self.stored_shape, self.dtype_name, True)

    def read(self) -> np.ndarray:
        c, t, d = self.stored_shape
        raw = np.fromfile(self.path, dtype=self.dtype_name, count=c * t * d, offset=self.offset)
        if raw.size != c * t * d:
            raise ValueError(f"{self.path}: truncated store (byte {self.offset}, {c}x{t}x{d})")
        features = raw.reshape(c, t, d).astype(np.float32, copy=False)
        if self.mean_crops:
            return features.mean(axis=0, keepdims=True, dtype=np.float64).astype(np.float32)
        return features

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self.read()
        return out if dtype is None else out.astype(dtype, copy=False)


def header_bytes(path: str) -> int:
    """Size of the .npy header of `path` (the data follows it)."""
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            np.lib.format.read_array_header_1_0(fh)
        else:
            np.lib.format.read_array_header_2_0(fh)
        return fh.tell()


def _read_meta(paths: Sequence[str]) -> tuple[pd.DataFrame, int]:
    """Every shard's rows without features (categorical strings: small at UCF scale)."""
    parts, dims = [], {}
    for path in paths:
        pf = pq.ParquetFile(path)
        dims[str(path)] = pf.schema_arrow.field("feature").type.list_size
        table = pf.read(columns=list(META_COLUMNS))
        parts.append(table.to_pandas(strings_to_categorical=True))
    if not parts:
        raise ValueError("no feature shards given")
    if len(set(dims.values())) > 1:
        raise ValueError(f"feature shards disagree on the feature size: {dims}")
    meta = pd.concat(parts, ignore_index=True)
    for column in ("video_id", "split", "source", "method", "class"):
        meta[column] = meta[column].astype("category")
    return meta, next(iter(dims.values()))


def video_table(meta: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """Check shard rows (no features) and describe their videos.

    Returns `order`, the row order sorted by (video_id, crop, segment), and one row per
    video (sorted by id): its VIDEO_COLUMNS (`class` as `cls`), `crops`, `segments`, `row` (its first row in
    that order) and `segment_frames` (frames each segment covers).
    """
    bad_source = set(meta["source"].astype(str).unique()) - {"real", "synthetic"}
    if bad_source:
        raise ValueError(f"unknown source values in feature shards: {sorted(bad_source)}")
    ids = pd.Categorical(meta["video_id"].astype(str))  # categories sorted: ids in order
    crop = meta["crop"].to_numpy(np.int64)
    segment = meta["segment"].to_numpy(np.int64)
    order = np.lexsort((segment, crop, ids.codes))
    codes, crop, segment = ids.codes[order], crop[order], segment[order]
    same = (np.diff(codes) == 0) & (np.diff(crop) == 0) & (np.diff(segment) == 0)
    if same.any():
        victim = ids.categories[codes[np.flatnonzero(same)[0]]]
        raise ValueError(f"video {victim!r} appears in two shards (or twice in one)")
    frames_all = meta["n_frames"].to_numpy(np.int64)[order]
    starts = np.flatnonzero(np.r_[True, np.diff(codes) != 0])
    ends = np.r_[starts[1:], len(order)]
    for column in VIDEO_COLUMNS:  # one value per video, checked on integer codes
        values = pd.factorize(meta[column], use_na_sentinel=False)[0][order]
        differs = np.minimum.reduceat(values, starts) != np.maximum.reduceat(values, starts)
        if differs.any():
            victim = ids.categories[codes[starts[np.flatnonzero(differs)[0]]]]
            raise ValueError(f"video {victim!r} has rows that disagree on {VIDEO_COLUMNS}")
    columns = {c: meta[c].to_numpy(object)[order[starts]] for c in VIDEO_COLUMNS}
    rows = []
    for i, (first, last) in enumerate(zip(starts, ends, strict=True)):
        video_id = str(ids.categories[codes[first]])
        video_crops = np.unique(crop[first:last])
        n_segments = (last - first) // len(video_crops)
        # Every crop must cover the same segments, 0..T-1, with the same frame counts.
        if (
            len(video_crops) * n_segments != last - first
            or (segment[first:last].reshape(len(video_crops), -1) != np.arange(n_segments)).any()
        ):
            raise ValueError(
                f"video {video_id!r}: every crop must have segments 0..T-1 exactly once "
                f"(crops {video_crops.tolist()}, {last - first} rows)"
            )
        frames = frames_all[first:last].reshape(len(video_crops), -1)
        if (frames != frames[0]).any():
            raise ValueError(f"video {video_id!r}: crops disagree on a segment's n_frames")
        method, cls = columns["method"][i], columns["class"][i]
        rows.append(
            {
                "video_id": video_id,
                "split": str(columns["split"][i]),
                "source": str(columns["source"][i]),
                "method": None if pd.isna(method) else str(method),
                "label": int(columns["label"][i]),
                "cls": None if pd.isna(cls) else str(cls),
                "crops": len(video_crops),
                "segments": n_segments,
                "row": int(first),
                "segment_frames": frames[0].astype(np.int64),
            }
        )
    return order, pd.DataFrame(rows)


def build_store(shard_paths: Sequence[str], out_dir: str, dtype: str = "float32") -> pd.DataFrame:
    """Rewrite `shard_paths` into a store at `out_dir` (atomic); returns its video table.

    Two passes: the metadata decides where each row goes (and is checked as the loader
    checks it); then the features stream through in batches to their place.
    """
    if dtype not in STORE_DTYPES:
        raise ValueError(f"store dtype must be one of {STORE_DTYPES}, got {dtype!r}")
    meta, dim = _read_meta(shard_paths)
    order, videos = video_table(meta)  # order[i]: the source row written at store row i
    destination = np.empty(len(order), dtype=np.int64)
    destination[order] = np.arange(len(order), dtype=np.int64)
    del meta
    with atomic_dir(out_dir) as tmp:
        path = Path(tmp) / "features.npy"
        with open(path, "wb") as fh:
            header = {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": (len(order), dim)}  # fmt: skip
            np.lib.format.write_array_header_1_0(fh, header)
            start = fh.tell()
            fh.truncate(start + len(order) * dim * np.dtype(dtype).itemsize)
            source_row = 0
            progress = tqdm(total=len(order), desc="feature store", unit="row")
            for shard in shard_paths:
                # A buffered stream, one thread, one row group per iterator: one iterator
                # over the whole file kept what it had decoded (a 19 GB shard took 19.7 GB).
                reader = pq.ParquetFile(shard, buffer_size=READ_BUFFER_BYTES)
                batches = (
                    batch
                    for group in range(reader.num_row_groups)
                    for batch in reader.iter_batches(
                        batch_size=READ_BATCH_ROWS, row_groups=[group], columns=["feature"],
                        use_threads=False,
                    )
                )  # fmt: skip
                for batch in batches:
                    column = batch.column(0)
                    flat = column.flatten().to_numpy(zero_copy_only=False)
                    rows = flat.reshape(len(batch), dim).astype(dtype, copy=False)
                    _write_rows(fh, start, rows, destination[source_row : source_row + len(batch)])
                    source_row += len(batch)
                    progress.update(len(batch))
            progress.close()
        videos.to_parquet(Path(tmp) / "videos.parquet", index=False)
        info = {"format": STORE_FORMAT, "dtype": dtype, "dim": dim, "rows": len(order)}
        (Path(tmp) / "store.json").write_text(json.dumps(info, sort_keys=True) + "\n")
    log.info("feature store %s: %d videos, %d rows x %d (%s)", out_dir, len(videos), len(order), dim, dtype)  # fmt: skip
    return videos


def _write_rows(fh, start: int, rows: np.ndarray, destination: np.ndarray) -> None:
    """Write `rows` at their store rows, one write per run of consecutive destinations."""
    row_bytes = rows.shape[1] * rows.itemsize
    breaks = np.flatnonzero(np.diff(destination) != 1) + 1
    for first, last in zip(np.r_[0, breaks], np.r_[breaks, len(rows)], strict=True):
        fh.seek(start + int(destination[first]) * row_bytes)
        fh.write(np.ascontiguousarray(rows[first:last]).tobytes())


def open_store(store_dir: str) -> list[tuple[object, StoredFeatures]]:
    """Each video of a store: its video-table row and its StoredFeatures."""
    info_path = Path(store_dir) / "store.json"
    if not info_path.is_file():
        raise FileNotFoundError(f"{store_dir}: not a feature store (no store.json)")
    info = json.loads(info_path.read_text())
    if info.get("format") != STORE_FORMAT:
        raise ValueError(f"{store_dir}: store format {info.get('format')}, expected {STORE_FORMAT}")
    path = str(Path(store_dir) / "features.npy")
    dtype, dim = info["dtype"], int(info["dim"])
    row_bytes, start = dim * np.dtype(dtype).itemsize, header_bytes(path)
    expected = start + info["rows"] * row_bytes
    if os.path.getsize(path) != expected:
        raise ValueError(f"{path}: {os.path.getsize(path)} bytes, expected {expected}")
    table = pd.read_parquet(Path(store_dir) / "videos.parquet")
    return [
        (
            row,
            StoredFeatures(
                path,
                start + int(row.row) * row_bytes,
                (int(row.crops), int(row.segments), dim),
                dtype,
            ),
        )  # noqa: E501
        for row in table.itertuples(index=False)
    ]

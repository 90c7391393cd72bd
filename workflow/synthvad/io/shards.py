"""The one feature-shard writer and reader (parquet, one row per video x segment x crop)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from synthvad.io.atomic import atomic_path

KEY_COLUMNS = ("video_id", "crop", "segment")


def shard_schema(dim: int) -> pa.Schema:
    return pa.schema(
        [
            ("video_id", pa.string()),
            ("split", pa.string()),  # train | test
            ("source", pa.string()),  # real | synthetic
            ("method", pa.string()),  # synthesis method (gvvad, pavad), null for real videos
            ("label", pa.int8()),  # video-level 0 normal, 1 abnormal
            ("class", pa.string()),
            ("segment", pa.int32()),
            ("n_frames", pa.int32()),  # frames the segment covers
            ("crop", pa.int8()),
            ("feature", pa.list_(pa.float32(), dim)),
        ]
    )


def _table(meta: pd.DataFrame, features: np.ndarray, schema: pa.Schema) -> pa.Table:
    features = np.ascontiguousarray(features, dtype=np.float32)
    dim = schema.field("feature").type.list_size
    if features.ndim != 2 or len(features) != len(meta) or features.shape[1] != dim:
        raise ValueError(f"{len(meta)} rows of size {dim} but features of shape {features.shape}")
    columns = {}
    for field in schema:
        if field.name == "feature":
            flat = pa.array(features.reshape(-1), type=pa.float32())
            columns["feature"] = pa.FixedSizeListArray.from_arrays(flat, dim)
        else:
            # from_pandas: a missing value (None, or NaN in pandas' string columns) is null.
            columns[field.name] = pa.array(
                meta[field.name].tolist(), type=field.type, from_pandas=True
            )
    return pa.table(columns, schema=schema)


FLUSH_VALUES = 16_000_000  # float32 values buffered per row group (64 MB)


class _RowGroups:
    """Buffers appended rows and writes them as row groups of about FLUSH_VALUES floats:
    many small groups make a shard slow to read, one huge group needs it all in memory."""

    def __init__(self, writer: pq.ParquetWriter, schema: pa.Schema, flush_values: int) -> None:
        self.writer, self.schema, self.flush_values = writer, schema, flush_values
        self.metas: list[pd.DataFrame] = []
        self.features: list[np.ndarray] = []
        self.values = 0

    def append(self, meta: pd.DataFrame, features: np.ndarray) -> None:
        self.metas.append(meta)
        self.features.append(features)
        self.values += features.size
        if self.values >= self.flush_values:
            self.flush()

    def flush(self) -> None:
        if self.metas:
            meta = pd.concat(self.metas, ignore_index=True)
            self.writer.write_table(_table(meta, np.concatenate(self.features), self.schema))
        self.metas, self.features, self.values = [], [], 0


@contextlib.contextmanager
def shard_writer(
    path: str | os.PathLike[str], dim: int, flush_values: int = FLUSH_VALUES
) -> Iterator[Callable[[pd.DataFrame, np.ndarray], None]]:
    """Yield `append(meta, features)`, which adds rows to the shard in large row groups
    (a benchmark's features need not fit in memory); the shard appears only on success."""
    schema = shard_schema(dim)
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        groups = _RowGroups(writer, schema, flush_values)
        yield groups.append
        groups.flush()


def write_shard(meta: pd.DataFrame, features: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Write rows of `meta` (all schema columns but `feature`) with their feature vectors."""
    features = np.asarray(features)
    if features.ndim != 2 or len(features) != len(meta):
        raise ValueError(f"{len(meta)} rows but features of shape {features.shape}")
    with shard_writer(path, features.shape[1]) as append:
        append(meta, features)


def read_shards(paths: Sequence[str | os.PathLike[str]]) -> tuple[pd.DataFrame, np.ndarray]:
    """Concatenate shards: metadata frame and a float32 [rows, D] matrix, row-aligned.

    Rejects a video present in two shards and shards of different feature sizes.
    """
    metas, feats, dims = [], [], {}
    for path in paths:
        table = pq.read_table(path)
        dim = table.schema.field("feature").type.list_size
        dims[str(path)] = dim
        flat = table.column("feature").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        feats.append(flat.reshape(-1, dim) if dim > 0 else flat.reshape(len(table), 0))
        metas.append(table.drop(["feature"]).to_pandas())
    if len(set(dims.values())) > 1:
        raise ValueError(f"feature shards disagree on the feature size: {dims}")
    if not metas:
        raise ValueError("no feature shards given")
    meta = pd.concat(metas, ignore_index=True)
    dupes = meta.duplicated(list(KEY_COLUMNS))
    if dupes.any():
        raise ValueError(f"video {meta.loc[dupes, 'video_id'].iloc[0]!r} appears in two shards")
    return meta, np.concatenate(feats, axis=0).astype(np.float32, copy=False)

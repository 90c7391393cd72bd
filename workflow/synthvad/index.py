"""Stage 0: index a dataset manifest, probe every video, build frame-level ground truth."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from synthvad.io.atomic import write_parquet
from synthvad.io.video import VideoError, probe

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = ("video_id", "path", "split", "label", "class", "scene", "intervals")


class ManifestError(ValueError):
    """A manifest row that cannot be used; the message names the row."""


def read_manifest(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    df = pd.read_csv(path, dtype={"video_id": str, "path": str, "class": str, "scene": str})
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise ManifestError(f"{path}: missing columns {missing}")
    if df["video_id"].duplicated().any():
        raise ManifestError(
            f"{path}: duplicate video_id {df['video_id'][df.video_id.duplicated()].iloc[0]!r}"
        )
    bad_split = ~df["split"].isin(["train", "test"])
    if bad_split.any():
        raise ManifestError(
            f"{path}: video {df.video_id[bad_split].iloc[0]!r} has split not in train|test"
        )
    bad_label = ~df["label"].isin([0, 1])
    if bad_label.any():
        raise ManifestError(
            f"{path}: video {df.video_id[bad_label].iloc[0]!r} has label not in 0|1"
        )
    df["path"] = [str((path.parent / p).resolve()) for p in df["path"]]
    df["intervals"] = [
        _parse_intervals(v, vid, path) for v, vid in zip(df.intervals, df.video_id, strict=True)
    ]
    return df


def _parse_intervals(value: object, video_id: str, path: Path) -> list[tuple[int, int]]:
    text = "[]" if pd.isna(value) else str(value)
    try:
        pairs = json.loads(text)
        intervals = [(int(s), int(e)) for s, e in pairs]
    except (ValueError, TypeError) as exc:
        raise ManifestError(
            f"{path}: video {video_id!r}: intervals {text!r} is not [[start, end], ...]"
        ) from exc
    for s, e in intervals:
        if not 0 <= s < e:
            raise ManifestError(f"{path}: video {video_id!r}: bad interval [{s}, {e})")
    return intervals


def index_videos(
    df: pd.DataFrame, on_corrupt: str, source: str
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Probe the videos of manifest-like rows (MANIFEST_COLUMNS, `intervals` parsed);
    returns (index, ground truth, rejected videos). `source` names the rows' origin."""
    rows, gt, rejected = [], [], []
    for rec in tqdm(df.to_dict("records"), desc="index", unit="video"):
        try:
            info = probe(rec["path"])
        except VideoError as exc:
            if on_corrupt == "fail":
                raise
            log.warning("skipping video %s: %s", rec["video_id"], exc)
            rejected.append(
                {"video_id": rec["video_id"], "path": rec["path"], "reason": exc.reason}
            )
            continue
        rows.append(
            {
                **{k: rec[k] for k in ("video_id", "path", "split", "label", "class", "scene")},
                "n_frames": info.n_frames,
                "fps": info.fps,
                "width": info.width,
                "height": info.height,
            }
        )
        for s, e in rec["intervals"]:
            if s >= info.n_frames:
                raise ManifestError(
                    f"video {rec['video_id']!r}: interval starts at frame {s}, "
                    f"after its {info.n_frames} frames"
                )
            gt.append({"video_id": rec["video_id"], "start": s, "end": min(e, info.n_frames)})
    index = pd.DataFrame(rows)
    if index.empty:
        raise ManifestError(f"{source}: no decodable video")
    index["label"] = index["label"].astype("int8")
    ground_truth = pd.DataFrame(gt, columns=["video_id", "start", "end"]).astype(
        {"start": "int64", "end": "int64"}
    )
    return index, ground_truth, pd.DataFrame(rejected, columns=["video_id", "path", "reason"])


def run(
    data_cfg: dict[str, Any], manifest: str | None, out_index: str, out_gt: str, out_rejected: str
) -> None:
    """Stage 0 on videos: a manifest (demo, manifest) or a benchmark's official lists."""
    if data_cfg["kind"] in ("demo", "manifest"):
        table, source = read_manifest(manifest), str(manifest)
    else:
        from synthvad.datasets import video_table

        table, source = video_table(data_cfg), data_cfg["root"]
    found = index_videos(table, data_cfg["on_corrupt"], source)
    write_index(*found, out_index, out_gt, out_rejected)


def write_index(
    index: pd.DataFrame,
    gt: pd.DataFrame,
    rejected: pd.DataFrame,
    out_index: str,
    out_gt: str,
    out_rejected: str,
) -> None:
    write_parquet(gt, out_gt)
    write_parquet(rejected, out_rejected)
    write_parquet(index, out_index)
    log.info("indexed %d videos (%d rejected)", len(index), len(rejected))

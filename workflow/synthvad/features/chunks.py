"""The jobs of stage 6: one chunk of real videos or synthetic clips -> a chunk shard, and
the gathers that check the chunks and write part-real / part-synthetic.parquet."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthvad.features.gather import gather
from synthvad.features.jobs import balanced_chunks
from synthvad.io.video import VideoError

log = logging.getLogger(__name__)

VIDEO_COLUMNS = ("video_id", "split", "source", "method", "label", "class")


def shard_rows(
    video: Mapping[str, Any], n_crop_rows: int, segment_frames: list[int]
) -> pd.DataFrame:
    """The shard columns but `feature` of one video's [crops x segments] feature rows."""
    n_segments = len(segment_frames)
    n_crops = n_crop_rows // n_segments
    meta = pd.DataFrame(
        {
            "segment": np.tile(np.arange(n_segments), n_crops),
            "n_frames": np.tile(np.asarray(segment_frames), n_crops),
            "crop": np.repeat(np.arange(n_crops), n_segments),
        }
    )
    for column in VIDEO_COLUMNS:
        meta[column] = video[column]
    return meta


def extract_videos(
    videos: pd.DataFrame,
    params: Mapping[str, Any],
    runtime: Mapping[str, Any],
    out: str,
    skip_corrupt: bool,
    bundle: Any = None,
) -> int:
    """Features of `videos` (VIDEO_COLUMNS, path, optional n_frames) into one shard;
    returns the number of videos with features. A video that cannot be decoded stops the
    job, naming the file, unless `skip_corrupt` (synthetic clips: the filter rejects them)."""
    import torch

    from synthvad.features.extract import Throughput
    from synthvad.features.loader import VideoTask
    from synthvad.io.shards import shard_writer

    torch.set_num_threads(max(1, int(runtime["threads"])))
    records = videos.to_dict("records")
    tasks = [
        VideoTask(pos, str(rec["path"]), _frames(rec.get("n_frames")))
        for pos, rec in enumerate(records)
    ]
    dim, stream = _extractor(tasks, params, runtime, bundle)
    throughput, done = Throughput(), 0
    with shard_writer(out, dim) as append:
        for video in stream:
            rec = records[video.pos]
            if video.error is not None:
                if not skip_corrupt:
                    raise VideoError(rec["path"], video.error)
                log.warning("video %s is skipped: %s", rec["video_id"], video.error)
            elif video.features is None or video.n_segments == 0:
                log.warning("video %s is shorter than one segment; no features", rec["video_id"])
            else:
                append(shard_rows(rec, len(video.features), video.segment_frames), video.features)
                throughput.add(video)
                done += 1
    log.info("%d of %d videos -> %s: %s", done, len(tasks), out, throughput.summary())
    return done


def _extractor(
    tasks: Sequence[Any], params: Mapping[str, Any], runtime: Mapping[str, Any], bundle: Any
) -> tuple[int, Iterator[Any]]:
    """The configured extractor over `tasks`: (feature size, finished videos)."""
    from synthvad.features.extract import embedding_dim, extract, resolve_workers

    threads = int(runtime["threads"])
    if params["features"]["extractor"] == "motion":
        from synthvad.features.motion import MotionSpec, extract_motion, resolve_motion_workers

        spec = MotionSpec.from_config(params["features"]["motion"])
        workers = resolve_motion_workers(runtime["workers"], threads)
        log.info("%d videos, motion extractor (D=%d), %d workers", len(tasks), spec.dim, workers)
        return spec.dim, extract_motion(tasks, params["segments"], spec, workers)
    if params["features"]["extractor"] in ("i3d", "i3d_resnet50"):
        from synthvad.devices import resolve_device
        from synthvad.features.i3d_extract import extract_clips, load_network

        extractor = params["features"]["extractor"]
        device = resolve_device(runtime["device"], "features.i3d.device")
        network = bundle or load_network(
            extractor, params["features"]["i3d"]["weights"], params["seed"]
        )
        workers = resolve_workers(runtime["workers"], device, threads)
        log.info("%d videos, %s extractor, %d decoding workers, device %s", len(tasks), extractor, workers, device)  # fmt: skip
        stream = extract_clips(
            tasks, extractor, network, params["segments"], params["features"],
            int(runtime["batch_size"]), workers, device,
        )  # fmt: skip
        from synthvad.features.i3d_extract import NETWORKS

        return NETWORKS[extractor].dim, stream
    if bundle is None:
        from synthvad.clip_model import load_clip

        bundle = load_clip({**params["clip"], "device": runtime["device"]}, seed=params["seed"])
    workers = resolve_workers(runtime["workers"], bundle.device, threads)
    log.info("%d videos, %d decoding workers, device %s", len(tasks), workers, bundle.device)
    stream = extract(
        tasks, bundle, params["segments"], params["features"], runtime["batch_size"], workers
    )
    return embedding_dim(bundle), stream


def _frames(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def real_videos(index_path: str) -> pd.DataFrame:
    df = pd.read_parquet(index_path)
    return df.assign(source="real", method=None)[[*VIDEO_COLUMNS, "path", "n_frames"]]


def real_chunk(
    index_path: str,
    chunk: int,
    n_chunks: int,
    params: Mapping[str, Any],
    runtime: Mapping[str, Any],
    out: str,
) -> None:
    videos = real_videos(index_path)
    frames = dict(zip(videos["video_id"], videos["n_frames"], strict=True))
    ids = balanced_chunks(frames, n_chunks)[chunk]
    chunk_videos = videos[videos["video_id"].isin(ids)].sort_values("video_id")
    log.info("real chunk %d of %d: %d of %d videos", chunk + 1, n_chunks, len(ids), len(videos))
    extract_videos(chunk_videos, params, runtime, out, skip_corrupt=False)


def synthetic_videos(clip_paths: Sequence[str]) -> pd.DataFrame:
    """Clips described by their sidecars (written next to each clip by stage 4)."""
    rows = []
    for path in clip_paths:
        sidecar = json.loads(Path(path).with_suffix(".json").read_text())
        rows.append(
            {
                "video_id": sidecar["clip_id"],
                "split": "train",
                "source": "synthetic",
                "method": sidecar["method"],
                "label": int(sidecar["label"]),
                "class": sidecar["class"],
                "path": str(path),
            }
        )
    return pd.DataFrame(rows, columns=[*VIDEO_COLUMNS, "path"])


def synthetic_chunk(
    clip_paths: Sequence[str], params: Mapping[str, Any], runtime: Mapping[str, Any], out: str
) -> None:
    """Every clip of the chunk, kept by the filter or not: the gather picks the kept ones,
    so a changed filter threshold never re-extracts."""
    extract_videos(synthetic_videos(clip_paths), params, runtime, out, skip_corrupt=True)


def gather_real(
    chunk_paths: Sequence[str], index_path: str, segments_cfg: Mapping[str, Any], out: str
) -> None:
    index = pd.read_parquet(index_path, columns=["video_id", "n_frames"])
    expected = dict(zip(index["video_id"], index["n_frames"].astype(int), strict=True))
    gather(chunk_paths, expected, segments_cfg, out)


def gather_synthetic(
    chunk_paths: Sequence[str], filtered_path: str, segments_cfg: Mapping[str, Any], out: str
) -> None:
    filtered = pd.read_parquet(filtered_path, columns=["clip_id", "n_frames", "keep"])
    kept = filtered[filtered["keep"]]
    expected = dict(zip(kept["clip_id"], kept["n_frames"].astype(int), strict=True))
    rejected = frozenset(filtered.loc[~filtered["keep"], "clip_id"])
    log.info("%d of %d clips kept by the filter", len(kept), len(filtered))
    gather(chunk_paths, expected, segments_cfg, out, ignored=rejected)

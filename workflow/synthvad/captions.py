"""TEVAD's caption stream: a caption per segment from a VLM over the OpenAI API, then its
CLIP text embedding as a one-crop feature shard row-aligned with the visual features.

Segments come from the visual feature part itself (its crop-0 rows: `n_frames` per segment,
consecutive from frame 0), so captions and features can never disagree on segmentation.
Consecutive segments may share a caption (`segments_per_caption`), which divides the
number of requests. Answers are cached per request (frames included), so a rerun asks
only for what is new.
"""

from __future__ import annotations

import base64
import io
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from tqdm import tqdm

from synthvad.io.atomic import write_parquet
from synthvad.io.shards import shard_writer
from synthvad.io.video import read_frames
from synthvad.llm.batch import Job, run_jobs
from synthvad.llm.messages import InvalidAnswer, check_one_sentence, plain_answer, text_part
from synthvad.llm.settings import LLMSettings
from synthvad.segments import sample_indices

log = logging.getLogger(__name__)

META_COLUMNS = ["video_id", "split", "source", "method", "label", "class", "segment", "n_frames"]
CAPTION_COLUMNS = ["video_id", "segment", "caption", "request_hash", "model"]
SYSTEM = "You write short, factual captions of surveillance camera footage."
REFUSAL = re.compile(r"^(i\s*(am|'m)\s*(sorry|unable)|i\s+can(not|'t))\b", re.I)
# Requests built (frames encoded) per batch: bounds memory whatever the data set's size.
REQUESTS_PER_BATCH = 256


def segment_table(features_path: str) -> pd.DataFrame:
    """One row per (video, segment) of a visual feature part (crop 0), with `start`, the
    segment's first frame (segments are consecutive from frame 0)."""
    meta = pq.read_table(features_path, columns=[*META_COLUMNS, "crop"]).to_pandas()
    meta = meta[meta["crop"] == 0].drop(columns="crop")
    meta = meta.sort_values(["video_id", "segment"], ignore_index=True)
    ends = meta.groupby("video_id", sort=False)["n_frames"].cumsum()
    return meta.assign(start=(ends - meta["n_frames"]).astype(np.int64))


def caption_groups(segments: pd.DataFrame, per_caption: int) -> pd.DataFrame:
    """The segment table with `group` (first segment of the caption it shares) and
    `group_start`/`group_end`, the frame span that caption describes."""
    group = segments["segment"] // per_caption * per_caption
    out = segments.assign(group=group.astype(np.int64))
    by_group = out.assign(end=out["start"] + out["n_frames"]).groupby(["video_id", "group"])
    out["group_start"] = by_group["start"].transform("min")
    out["group_end"] = by_group["end"].transform("max")
    return out


def instruction(n_images: int) -> str:
    frames = "this frame" if n_images == 1 else f"these {n_images} frames, in time order,"
    return (
        f"Caption {frames} from a fixed surveillance camera. Say in one short sentence who "
        "or what is visible and what they are doing. State only what is visible; do not "
        "guess intentions or name the place unless it is obvious."
    )


def validate(max_words: int):
    def check(text: str) -> str:
        caption = plain_answer(text)
        if REFUSAL.match(caption):
            raise InvalidAnswer("the answer is a refusal, not a caption")
        check_one_sentence(caption, max_words)
        return caption

    return check


def jpeg_part(frame: np.ndarray, size: int) -> dict[str, Any]:
    """An image content part: the frame shrunk to `size` on its long side, as JPEG."""
    from PIL import Image

    image = Image.fromarray(frame)
    image.thumbnail((size, size))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    data = base64.b64encode(buffer.getvalue()).decode()
    return {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{data}"}}


def video_jobs(
    video_id: str, path: str, groups: pd.DataFrame, cfg: Mapping[str, Any]
) -> list[tuple[int, Job]]:
    """(group, job) for each caption of one video; its frames decoded in one pass."""
    spans = groups.drop_duplicates("group")
    picks = [
        sample_indices(int(s), int(e), int(cfg["frames_per_caption"]))
        for s, e in zip(spans["group_start"], spans["group_end"], strict=True)
    ]
    frames = read_frames(path, sorted({i for p in picks for i in p}))
    at = {i: k for k, i in enumerate(sorted({i for p in picks for i in p}))}
    check = validate(int(cfg["max_words"]))
    jobs = []
    for group, pick in zip(spans["group"], picks, strict=True):
        content = [text_part(instruction(len(pick)))]
        content += [jpeg_part(frames[at[i]], int(cfg["image_size"])) for i in pick]
        jobs.append(
            (
                int(group),
                Job(
                    name=f"video {video_id} segment {int(group)}",
                    messages=[
                        {"role": "system", "content": SYSTEM},
                        {"role": "user", "content": content},
                    ],
                    validate=check,
                    reminder="Reply again with only one short sentence describing the frames.",
                ),
            )
        )
    return jobs


def _batches(
    table: pd.DataFrame, paths: Mapping[str, str]
) -> Iterator[list[tuple[str, str, pd.DataFrame]]]:
    batch, requests = [], 0
    for video_id, groups in table.groupby("video_id", sort=True):
        if not isinstance(paths.get(video_id), str) or not paths[video_id]:
            raise ValueError(
                f"captions: no video file for {video_id!r}; the caption stream needs the "
                "videos themselves (imported features without videos cannot be captioned)"
            )
        batch.append((video_id, paths[video_id], groups))
        requests += groups["group"].nunique()
        if requests >= REQUESTS_PER_BATCH:
            yield batch
            batch, requests = [], 0
    if batch:
        yield batch


def caption_part(
    features_path: str,
    video_paths: Mapping[str, str],
    cfg: Mapping[str, Any],
    settings: LLMSettings,
    out: str,
) -> pd.DataFrame:
    """Caption every segment of a visual feature part; write (video_id, segment, caption,
    request_hash, model) rows, one per segment."""
    table = caption_groups(segment_table(features_path), int(cfg["segments_per_caption"]))
    n_requests = int(table.drop_duplicates(["video_id", "group"]).shape[0])
    log.info(
        "captions: %d videos, %d segments, %d captions to make (%d segments each)",
        table["video_id"].nunique(), len(table), n_requests, cfg["segments_per_caption"],
    )  # fmt: skip
    rows = []
    with tqdm(total=table["video_id"].nunique(), desc="caption videos", unit="video") as bar:
        for batch in _batches(table, video_paths):
            jobs = [(vid, g, job) for vid, path, groups in batch for g, job in video_jobs(vid, path, groups, cfg)]  # fmt: skip
            answers = run_jobs([job for *_, job in jobs], settings)
            caption = {(vid, g): a for (vid, g, _), a in zip(jobs, answers, strict=True)}
            for vid, _, groups in batch:
                for segment, group in zip(groups["segment"], groups["group"], strict=True):
                    answer = caption[(vid, int(group))]
                    rows.append((vid, int(segment), answer.value, answer.key, settings.model))
            bar.update(len(batch))
    result = pd.DataFrame(rows, columns=CAPTION_COLUMNS)
    write_parquet(result, out)
    return result


def embed_part(
    captions_path: str, features_path: str, clip_cfg: Mapping[str, Any], seed: int, out: str
) -> int:
    """The captions' CLIP text embeddings as a feature shard (crop 0; the visual part's
    video metadata), so that the detector reads them like features. Returns the width."""
    from synthvad.clip_model import load_clip

    segments = segment_table(features_path)
    captions = pd.read_parquet(captions_path, columns=["video_id", "segment", "caption"])
    rows = segments.merge(captions, on=["video_id", "segment"], how="left", validate="1:1")
    if rows["caption"].isna().any() or len(captions) != len(segments):
        missing = (
            rows.loc[rows["caption"].isna(), ["video_id", "segment"]].head(1).to_dict("records")
        )
        raise ValueError(
            f"{captions_path} does not caption the segments of {features_path} one to one "
            f"(first uncaptioned: {missing}); rerun the captions rule"
        )
    texts = sorted(set(rows["caption"]))
    bundle = load_clip(clip_cfg, seed=seed)
    size = int(clip_cfg["batch_size"])
    vectors = np.concatenate(
        [
            bundle.encode_texts(texts[i : i + size])
            for i in tqdm(range(0, len(texts), size), desc="embed captions", unit="batch")
        ]
    )
    position = {t: i for i, t in enumerate(texts)}
    features = vectors[[position[c] for c in rows["caption"]]].astype(np.float32)
    with shard_writer(out, features.shape[1]) as append:
        append(rows[META_COLUMNS].assign(crop=0), features)
    log.info("captions: %d distinct of %d segments, %d dims (%s)", len(texts), len(rows), features.shape[1], bundle.name)  # fmt: skip
    return int(features.shape[1])


def video_paths(index_path: str | None, clip_paths: Sequence[str]) -> dict[str, str]:
    """video_id -> file: real videos from the index, synthetic clips by their sidecars."""
    from synthvad.features.chunks import synthetic_videos

    paths: dict[str, str] = {}
    if index_path:
        index = pd.read_parquet(index_path, columns=["video_id", "path"])
        paths.update(zip(index["video_id"], index["path"], strict=True))
    if clip_paths:
        clips = synthetic_videos(clip_paths)
        paths.update(zip(clips["video_id"], clips["path"], strict=True))
    return paths

"""Stage 5: keep a synthetic clip only if it decodes, is not blank, moves, and matches its text."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from synthvad.io.atomic import write_parquet
from synthvad.io.strips import evenly, strip_jpeg
from synthvad.io.video import VideoError, probe, read_frames
from synthvad.segments import sample_indices

log = logging.getLogger(__name__)


def frame_std(frames: np.ndarray) -> float:
    """Mean over frames of the pixel standard deviation: near 0 for a blank clip."""
    return float(frames.reshape(len(frames), -1).std(axis=1).mean())


def motion(frames: np.ndarray) -> float:
    """Mean absolute difference of consecutive sampled frames (0-255): near 0 when frozen."""
    if len(frames) < 2:
        return 0.0
    return float(np.abs(np.diff(frames.astype(np.int16), axis=0)).mean())


def verdict(scores: dict[str, Any], cfg: dict[str, Any]) -> tuple[bool, str]:
    """(keep, reason): the first failed check, in order of cost."""
    if not scores["decodable"]:
        return False, "corrupt"
    if scores["frame_std"] < cfg["min_std"]:
        return False, "blank"
    if scores["motion"] < cfg["min_motion"]:
        return False, "frozen"
    if scores["clip_score"] < cfg["min_clip_score"]:
        return False, "text_mismatch"
    return True, "ok"


def score_clip(path: str, n_sample: int) -> tuple[dict[str, Any], np.ndarray | None]:
    try:
        info = probe(path)
        frames = read_frames(path, sample_indices(0, info.n_frames, n_sample))
    except VideoError as exc:
        log.warning("clip %s is not decodable: %s", path, exc.reason)
        return {"decodable": False, "n_frames": 0, "frame_std": 0.0, "motion": 0.0}, None
    scores = {
        "decodable": True,
        "n_frames": info.n_frames,
        "frame_std": frame_std(frames),
        "motion": motion(frames),
    }
    return scores, frames


def score_chunk(config: dict[str, Any], videos: list[str], out: str) -> pd.DataFrame:
    """Scores of one chunk of clips (no verdict: thresholds apply in `gather`, so changing
    them rescores nothing)."""
    from synthvad.clip_model import load_clip

    bundle = load_clip(config["clip"], seed=config["seed"])
    rows = []
    for video in tqdm(videos, desc="filter", unit="clip"):
        sidecar = json.loads(Path(video).with_suffix(".json").read_text())
        scores, frames = score_clip(video, config["filter"]["frames"])
        clip_score = -1.0
        if frames is not None:
            img = bundle.encode_frames(frames).mean(axis=0)
            img /= np.linalg.norm(img) + 1e-12
            clip_score = float(bundle.encode_texts([sidecar["prompt"]])[0] @ img)
        scores["clip_score"] = clip_score
        # The gallery's frame strip, from the frames decoded anyway (None: not decodable).
        scores["strip"] = None if frames is None else strip_jpeg(evenly(frames))
        rows.append(
            {
                "clip_id": sidecar["clip_id"],
                "method": sidecar["method"],
                "class": sidecar["class"],
                "label": sidecar["label"],
                "path": video,
                **scores,
            }
        )
    df = pd.DataFrame(rows)
    write_parquet(df, out)
    return df


def gather(thresholds: dict[str, Any], chunk_paths: list[str], out: str) -> pd.DataFrame:
    """Every chunk's scores with the verdict of the current thresholds."""
    # Frame strips stay in the chunks (the gallery reads them there): this table stays small.
    df = pd.concat([pd.read_parquet(p) for p in chunk_paths], ignore_index=True)
    df = df.drop(columns="strip", errors="ignore")
    twice = df["clip_id"][df["clip_id"].duplicated()]
    if len(twice):
        raise ValueError(f"clip {twice.iloc[0]!r} is in two filter chunks")
    verdicts = [verdict(row, thresholds) for row in df.to_dict("records")]
    df["keep"] = [keep for keep, _ in verdicts]
    df["reason"] = [reason for _, reason in verdicts]
    write_parquet(df, out)
    log.info(
        "kept %d of %d clips; rejected: %s",
        df.keep.sum(),
        len(df),
        df.reason[~df.keep].value_counts().to_dict(),
    )
    return df

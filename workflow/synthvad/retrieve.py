"""Stage 2: CLIP retrieval of class-relevant initial images from real normal frames.

PA-VAD 3.1.1 and supplementary S1.1: score = s_pos - lambda * s_neg, Top-K per class,
with optional scene balancing (count^alpha sub-sampling, then a per-scene quota).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from synthvad.io.atomic import atomic_dir, write_parquet
from synthvad.io.video import read_frames
from synthvad.plan import NORMAL
from synthvad.segments import sample_indices

log = logging.getLogger(__name__)


class RetrievalError(ValueError):
    pass


def positive_text(class_query: str, positive_phrases: str) -> str:
    """t_c = concat(x_c, g_pos)."""
    return f"{class_query}, {positive_phrases}" if positive_phrases else class_query


def retrieval_scores(
    image_emb: np.ndarray, positive_emb: np.ndarray, negative_emb: np.ndarray, lam: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(score [N, C], s_pos [N, C], s_neg [N]) from unit-norm embeddings.

    s_pos = <v, t_c> (Eq. 2); s_neg = mean over negatives of <v, t(n)> (Eq. 3, aggregated);
    score = s_pos - lambda * s_neg (Eq. 4).
    """
    s_pos = image_emb @ positive_emb.T
    s_neg = (
        (image_emb @ negative_emb.T).mean(axis=1) if len(negative_emb) else np.zeros(len(image_emb))
    )
    return s_pos - lam * s_neg[:, None], s_pos, s_neg


def scene_subsample(scenes: np.ndarray, alpha: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask keeping ~count(s)^alpha-proportional shares per scene, pool size kept.

    alpha = 1 keeps everything; alpha = 0 gives every scene the same share.
    """
    names, counts = np.unique(scenes, return_counts=True)
    weights = counts.astype(float) ** alpha
    quota = np.minimum(counts, np.ceil(len(scenes) * weights / weights.sum()).astype(int))
    keep = np.zeros(len(scenes), dtype=bool)
    for name, q in zip(names, quota, strict=True):
        members = np.flatnonzero(scenes == name)
        keep[rng.choice(members, size=q, replace=False)] = True
    return keep


def select_top_k(scores: np.ndarray, scenes: np.ndarray, k: int, min_per_scene: int) -> np.ndarray:
    """Indices of the Top-K by score, reserving `min_per_scene` per scene first.

    Reserved picks come from each scene's own best; if they exceed K, the K best of
    them win. Remaining slots are filled by global rank. Ranks: the reserved picks by
    score, then the fill by score, so raising K only appends ranks (every existing
    rank keeps its frame, and so its synthetic clip).
    """
    order = np.argsort(-scores, kind="stable")
    reserved: list[int] = []
    if min_per_scene > 0:
        for name in pd.unique(scenes):
            reserved += [int(i) for i in order if scenes[i] == name][:min_per_scene]
        reserved = sorted(reserved, key=lambda i: (-scores[i], i))[:k]
    chosen = set(reserved)
    fill = [int(i) for i in order if int(i) not in chosen][: k - len(reserved)]
    return np.array(reserved + fill, dtype=int)


def candidate_frames(index: pd.DataFrame, per_video: int) -> pd.DataFrame:
    """Evenly spaced frames of the real normal training videos."""
    normal = index[(index["split"] == "train") & (index["label"] == 0)]
    rows = [
        {"video_id": r.video_id, "path": r.path, "scene": r.scene, "frame": f}
        for r in normal.itertuples()
        for f in sample_indices(0, int(r.n_frames), per_video)
    ]
    return pd.DataFrame(rows)


def run(config: dict[str, Any], index_path: str, out_table: str, out_dir: str) -> pd.DataFrame:
    from synthvad.clip_model import load_clip

    cfg = config["retrieve"]
    index = pd.read_parquet(index_path)
    cands = candidate_frames(index, cfg["frames_per_video"])
    if cands.empty:
        raise RetrievalError("no real normal training video to retrieve initial images from")
    # candidate_frames lists each video's frames consecutively, so one read per video
    # in the same order keeps frames row-aligned with `cands`.
    frames = np.concatenate(
        [
            read_frames(path, group["frame"].tolist())
            for path, group in tqdm(cands.groupby("path", sort=False), desc="decode")
        ]
    )

    bundle = load_clip(config["clip"], seed=config["seed"])
    image_emb = bundle.encode_frames(frames, config["clip"]["batch_size"])
    queries = [(c["name"], c["positive"], cfg["top_k"]) for c in config["classes"]]
    if cfg["normal_top_k"]:
        queries.append((NORMAL, cfg["normal_query"], cfg["normal_top_k"]))
    pos_emb = bundle.encode_texts(
        [positive_text(q, cfg["positive_phrases"]) for _, q, _ in queries]
    )
    neg_emb = (
        bundle.encode_texts(cfg["negative_phrases"])
        if cfg["negative_phrases"]
        else np.zeros((0, pos_emb.shape[1]), np.float32)
    )
    score, s_pos, s_neg = retrieval_scores(image_emb, pos_emb, neg_emb, cfg["lambda"])

    balance = cfg["scene_balance"]
    scenes = cands["scene"].to_numpy()
    pool = np.ones(len(cands), dtype=bool)
    if balance["enabled"]:
        pool = scene_subsample(scenes, balance["alpha"], np.random.default_rng([config["seed"], 3]))
    pool_idx = np.flatnonzero(pool)
    quota = balance["min_per_scene"] if balance["enabled"] else 0

    rows = []
    with atomic_dir(out_dir) as tmp:
        for c, (name, _, k) in enumerate(queries):
            if k > len(pool_idx):
                raise RetrievalError(
                    f"class {name!r}: top_k={k} but only {len(pool_idx)} candidate frames; lower "
                    "retrieve.top_k / retrieve.normal_top_k or raise retrieve.frames_per_video"
                )
            picked = pool_idx[select_top_k(score[pool_idx, c], scenes[pool_idx], k, quota)]
            for rank, i in enumerate(picked):
                image = Path(out_dir) / f"{name}_{rank:03d}.png"
                Image.fromarray(frames[i]).save(tmp / image.name)
                rows.append(
                    {
                        "class": name,
                        "rank": rank,
                        "video_id": cands.video_id[i],
                        "frame": int(cands.frame[i]),
                        "scene": scenes[i],
                        "score": float(score[i, c]),
                        "s_pos": float(s_pos[i, c]),
                        "s_neg": float(s_neg[i]),
                        "image": str(image),
                        "clip_random_weights": bundle.random_weights,
                    }
                )
    table = pd.DataFrame(rows)
    write_parquet(table, out_table)
    log.info("retrieved %d initial images for %d queries", len(table), len(queries))
    return table

"""Generation quality of the kept synthetic clips, laid out as PA-VAD's Table 3: FID and KID
on Inception-v3 features of frames, FVD and KVD on I3D features of 16-frame clips, per
synthesis method and class, against real training videos (formulas: synthvad.quality).

The real side of a row: the real abnormal training videos of its class when the run has
some, else every real normal training video (what the clips were meant to look like:
the same scenes); the `normal` row compares synthetic normal clips with real normal videos.
Each video gives `frames_per_video` evenly spaced frames and `clips_per_video` evenly
spaced clips; at most `max_videos` videos per side (evenly chosen by id).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from synthvad.io.atomic import write_json
from synthvad.io.video import read_frames

log = logging.getLogger(__name__)

ALL, NORMAL = "all", "normal"


def spread(n: int, k: int) -> np.ndarray:
    """min(n, k) indices of 0..n-1, centres of equal bins."""
    k = min(n, k)
    return (np.arange(k) * 2 + 1) * n // (2 * k)


def clip_starts(n_frames: int, k: int, length: int = 16) -> list[int]:
    """First frames of k evenly spaced `length`-frame windows (one at 0 for a short video)."""
    room = n_frames - length
    if room <= 0:
        return [0]
    return sorted({int(round(room * (i + 0.5) / k)) for i in range(k)})


class Encoders:
    """Inception-v3 frame features and I3D clip logits (the FVD convention: the 400
    Kinetics logits of the clip), from local weights, or random weights when a path is
    null (the numbers then say nothing about quality; the JSON says so)."""

    def __init__(self, cfg: Mapping[str, Any], seed: int, device: torch.device) -> None:
        from synthvad.features.i3d import load_inception_i3d
        from synthvad.quality import FrameFeatures, save_random_inception_weights

        self.device, self.batch_size = device, int(cfg["batch_size"])
        weights = cfg["inception_weights"]
        self._tmp = None
        if weights is None:
            self._tmp = tempfile.TemporaryDirectory()
            weights = save_random_inception_weights(Path(self._tmp.name) / "inception.pth", seed)
        self.frames = FrameFeatures(weights, device=device, batch_size=self.batch_size)
        self.i3d = load_inception_i3d(cfg["i3d_weights"], seed=seed).to(device).eval()

    @torch.inference_mode()
    def clips(self, clips: torch.Tensor) -> np.ndarray:
        """uint8 clips [N, 16, 3, 224, 224] -> I3D logits [N, classes]."""
        from synthvad.features.i3d import normalize_clips

        out = []
        for start in range(0, len(clips), self.batch_size):
            x = normalize_clips(clips[start : start + self.batch_size].to(self.device))
            out.append(self.i3d(x).mean(dim=-1).float().cpu().numpy())
        return np.concatenate(out)


def video_features(
    path: str, n_frames: int, cfg: Mapping[str, Any], encoders: Encoders
) -> tuple[np.ndarray, np.ndarray]:
    """(frame features [k, 2048], clip logits [c, classes]) of one video."""
    from synthvad.features.i3d_extract import clip_frame_indices, i3d_crops

    frames = read_frames(path, spread(n_frames, int(cfg["frames_per_video"])).tolist())
    picks = [
        clip_frame_indices(s, min(s + 16, n_frames))
        for s in clip_starts(n_frames, int(cfg["clips_per_video"]))
    ]
    wanted = sorted({i for p in picks for i in p})
    at = {f: k for k, f in enumerate(wanted)}
    crops = i3d_crops(read_frames(path, wanted), "center")[:, 0]  # [F, 3, 224, 224]
    clips = torch.stack([crops[[at[i] for i in p]] for p in picks])  # [c, 16, 3, 224, 224]
    return encoders.frames(frames), encoders.clips(clips)


def _evenly(videos: pd.DataFrame, k: int) -> pd.DataFrame:
    videos = videos.sort_values("video_id", ignore_index=True)
    return videos.iloc[spread(len(videos), k)] if len(videos) else videos


def groups(
    real: pd.DataFrame, synthetic: pd.DataFrame, per_class: bool = True
) -> list[tuple[str, str, pd.DataFrame, pd.DataFrame, str]]:
    """(method, class, synthetic clips, real videos, what the real side is) per table row;
    without `per_class`, only each method's `all` and `normal` rows."""
    real_normal = real[real["label"] == 0]
    rows = []
    for method in sorted(synthetic["method"].unique()):
        mine = synthetic[synthetic["method"] == method]
        abnormal = mine[mine["label"] == 1]
        if len(abnormal):
            rows.append((method, ALL, abnormal, real, "every real training video"))
        for cls in sorted(abnormal["class"].dropna().unique()) if per_class else []:
            same = real[(real["label"] == 1) & (real["class"] == cls)]
            reference, what = (
                (same, f"real {cls} videos") if len(same) else (real_normal, "real normal videos")
            )
            rows.append((method, str(cls), abnormal[abnormal["class"] == cls], reference, what))
        normal = mine[mine["label"] == 0]
        if len(normal):
            rows.append((method, NORMAL, normal, real_normal, "real normal videos"))
    return rows


def _metrics(
    real: np.ndarray, fake: np.ndarray, cfg: Mapping[str, Any]
) -> tuple[float | None, ...]:
    """(Fréchet distance, kernel distance mean, std); None with fewer than 2 on a side."""
    from synthvad.quality import frechet_distance, kernel_distance

    if min(len(real), len(fake)) < 2:
        return None, None, None
    kid, kid_std = kernel_distance(
        real, fake, subsets=int(cfg["kid_subsets"]), subset_size=int(cfg["kid_subset_size"])
    )
    return frechet_distance(real, fake), kid, kid_std


def run(
    index_path: str, filtered_path: str, cfg: Mapping[str, Any], seed: int, device: str, out: str
) -> dict[str, Any]:
    from synthvad.devices import resolve_device

    index = pd.read_parquet(index_path)
    real = index[(index["split"] == "train") & index["path"].notna()]
    filtered = pd.read_parquet(filtered_path)
    synthetic = filtered[filtered["keep"]].rename(columns={"clip_id": "video_id"})
    random = [k for k in ("inception_weights", "i3d_weights") if cfg[k] is None]
    result: dict[str, Any] = {"rows": [], "random_weights": random, "settings": dict(cfg)}
    if real.empty or synthetic.empty:
        result["note"] = (
            "no real training videos to compare with (imported features have none)"
            if real.empty else "no synthetic clip was kept by the filter"
        )  # fmt: skip
        write_json(result, out)
        log.warning("generation quality: %s", result["note"])
        return result
    plan = [
        (method, cls, _evenly(fake, cfg["max_videos"]), _evenly(ref, cfg["max_videos"]), what)
        for method, cls, fake, ref, what in groups(real, synthetic, bool(cfg["per_class"]))
    ]
    needed = pd.concat([v for _, _, fake, ref, _ in plan for v in (fake, ref)])
    needed = needed.drop_duplicates("video_id")
    encoders = Encoders(cfg, seed, resolve_device(device, "quality.device"))
    features = {}
    for row in tqdm(
        needed.itertuples(index=False), total=len(needed), desc="quality", unit="video"
    ):
        features[row.video_id] = video_features(row.path, int(row.n_frames), cfg, encoders)

    def stack(videos: pd.DataFrame, which: int) -> np.ndarray:
        return np.concatenate([features[v][which] for v in videos["video_id"]])

    for method, cls, fake, ref, what in plan:
        fid, kid, kid_std = _metrics(stack(ref, 0), stack(fake, 0), cfg)
        fvd, kvd, kvd_std = _metrics(stack(ref, 1), stack(fake, 1), cfg)
        result["rows"].append(
            {"method": method, "class": cls, "clips": len(fake), "reference": what,
             "reference_videos": len(ref), "fid": fid, "kid": kid, "kid_std": kid_std,
             "fvd": fvd, "kvd": kvd, "kvd_std": kvd_std}
        )  # fmt: skip
    note = (
        f"FID/KID on Inception-v3 pool features of {cfg['frames_per_video']} frames per video, "
        f"FVD/KVD on I3D logits of {cfg['clips_per_video']} 16-frame clip(s) per video; "
        "the real side is each row's reference (metrics/generation.json). Distances from a "
        "few hundred samples are biased upwards: compare rows of equal size only."
    )
    if random:
        note += f" RANDOM weights ({', '.join('quality.' + k for k in random)} null): these numbers say nothing about quality."  # fmt: skip
    result["note"] = note
    write_json(result, out)
    log.info("generation quality: %d rows -> %s", len(result["rows"]), out)
    return result

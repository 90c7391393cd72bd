"""The real-vs-pseudo feature gap as PA-VAD shows it: the mean feature norm of real and
pseudo (synthetic) anomalies per class (its Table 1), and a 2-D PCA of real and synthetic
segment features per class.

Reads the feature stores one video at a time, so memory stays bounded at benchmark scale:
norms are summed per group, and each video gives at most `PCA_ROWS_PER_VIDEO` evenly
spaced segments (crop-averaged) to the projection.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthvad.io.atomic import atomic_path, write_json

log = logging.getLogger(__name__)

PCA_ROWS_PER_VIDEO = 8
ALL = "all"


def group_of(source: str, label: int) -> str:
    kind = "abnormal" if label else "normal"
    return f"{'pseudo' if source == 'synthetic' else 'real'}_{kind}"


def feature_norms(features: np.ndarray) -> np.ndarray:
    """L2 norm of every (crop, segment) feature row: [C, T, D] -> [C T] (float64)."""
    return np.linalg.norm(features.reshape(-1, features.shape[-1]).astype(np.float64), axis=1)


def spread_rows(n: int, k: int) -> np.ndarray:
    """At most k indices of 0..n-1, evenly spaced (centres of k equal bins)."""
    k = min(n, k)
    return (np.arange(k) * 2 + 1) * n // (2 * k)


def mean_norms(videos: pd.DataFrame) -> pd.DataFrame:
    """Videos, rows and mean norm per (group, anomaly class), and per group over all classes
    (class "all"), from per-video sums (columns group, cls, norm_sum, rows)."""
    stats = {
        "videos": ("norm_sum", "size"),
        "rows": ("rows", "sum"),
        "norm_sum": ("norm_sum", "sum"),
    }
    per_class = videos.dropna(subset=["cls"]).groupby(["group", "cls"]).agg(**stats).reset_index()
    overall = videos.groupby("group").agg(**stats).reset_index().assign(cls=ALL)
    table = pd.concat([overall, per_class], ignore_index=True)
    table["mean_norm"] = table["norm_sum"] / table["rows"]
    return table.drop(columns="norm_sum")


def measure(feature_paths: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-video norm sums and PCA sample rows of every training video of the stores (real
    and synthetic; the test split is left out, as the detector never trains on it)."""
    from synthvad.detect.data import load_videos

    videos, samples = [], []
    for v in load_videos(list(feature_paths)):
        if v.split != "train":
            continue
        features = np.asarray(v.features)
        norms = feature_norms(features)
        group = group_of(v.source, v.label)
        cls = v.cls if v.label else None
        videos.append(
            {"video_id": v.video_id, "group": group, "cls": cls, "method": v.method,
             "norm_sum": float(norms.sum()), "rows": len(norms)}
        )  # fmt: skip
        mean = features.mean(axis=0)  # crops averaged: one row per segment
        for row in mean[spread_rows(len(mean), PCA_ROWS_PER_VIDEO)]:
            samples.append((v.video_id, group, cls, row))
    return pd.DataFrame(videos), pd.DataFrame(samples, columns=["video_id", "group", "cls", "x"])


def project(samples: pd.DataFrame, seed: int) -> tuple[np.ndarray, list[float]]:
    """2-D PCA of the sampled rows (scikit-learn), fitted on real and pseudo rows together."""
    from sklearn.decomposition import PCA

    x = np.stack(samples["x"].to_numpy())
    pca = PCA(n_components=min(2, *x.shape), random_state=seed).fit(x)
    xy = pca.transform(x)
    if xy.shape[1] < 2:
        xy = np.pad(xy, ((0, 0), (0, 2 - xy.shape[1])))
    return xy, [float(r) for r in pca.explained_variance_ratio_]


COLOURS = {
    "real_normal": "#9e9e9e",
    "real_abnormal": "#d62728",
    "pseudo_normal": "#6baed6",
    "pseudo_abnormal": "#ff7f0e",
}


def plot(path: Path, samples: pd.DataFrame, xy: np.ndarray, ratio: list[float]) -> None:
    """One panel per anomaly class (its real and pseudo anomalies over all normal rows) and
    one with every row."""
    from matplotlib.figure import Figure  # object API, as the report's plots

    classes = sorted(c for c in samples["cls"].dropna().unique())
    panels = [ALL, *classes]
    cols = min(4, len(panels))
    rows = -(-len(panels) // cols)
    fig = Figure(figsize=(3.2 * cols, 3.0 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    normal = samples["cls"].isna().to_numpy()
    for ax, panel in zip(axes.flat, panels, strict=False):
        shown = (
            np.ones(len(samples), bool)
            if panel == ALL
            else normal | (samples["cls"] == panel).to_numpy()
        )
        for group, colour in COLOURS.items():
            keep = shown & (samples["group"] == group).to_numpy()
            if keep.any():
                ax.scatter(*xy[keep].T, s=6, alpha=0.6, color=colour, label=group.replace("_", " "))
        ax.set_title(panel.replace("_", " "), fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, loc="best", markerscale=2)
    share = ", ".join(f"PC{i + 1} {r:.0%}" for i, r in enumerate(ratio))
    fig.suptitle(
        f"Segment features, PCA of real and synthetic training videos ({share})", fontsize=10
    )
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")


def run(feature_paths: Sequence[str], seed: int, out_json: str, out_png: str) -> dict[str, Any]:
    videos, samples = measure(feature_paths)
    if videos.empty:
        raise ValueError(f"no training videos in {list(feature_paths)}")
    table = mean_norms(videos)
    xy, ratio = project(samples, seed)
    counts = {str(g): int(n) for g, n in samples["group"].value_counts(sort=False).items()}
    result = {
        "mean_norm": [
            {
                "group": r.group,
                "class": r.cls if isinstance(r.cls, str) else None,
                "videos": int(r.videos),
                "rows": int(r.rows),
                "mean_norm": float(r.mean_norm),
            }
            for r in table.itertuples(index=False)
        ],  # fmt: skip
        "pca": {"explained_variance_ratio": ratio, "rows_per_group": counts},
    }
    write_json(result, out_json)
    plot(Path(out_png), samples, xy, ratio)
    log.info("domain gap: %s", table.to_string(index=False))
    return result

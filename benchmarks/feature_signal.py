"""How much event signal a feature extractor carries on the demo: a linear probe.

A logistic regression is trained on the segment features of the demo's real training
videos (segment label: more than half its frames inside an event interval) and scored on
the test videos' segments; the segment-level ROC AUC says how linearly visible the events
are, before any weakly supervised detector. Motion descriptor groups are probed alone and
together; `--clip MODEL` adds open_clip MODEL with random weights, extracted through the
same stage-6 code (slow on a CPU).

    python benchmarks/feature_signal.py results/demo/demo/manifest.csv [--clip ViT-B-32]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

from synthvad.config import load_config  # noqa: E402
from synthvad.features.chunks import extract_videos  # noqa: E402
from synthvad.features.jobs import params  # noqa: E402
from synthvad.features.motion import MotionSpec  # noqa: E402
from synthvad.io.shards import read_shards  # noqa: E402
from synthvad.segments import frame_labels  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def extractor_params(extractor: str, clip_model: str | None = None) -> dict:
    """Stage-6 rule params of the demo config with this extractor (schema defaults)."""
    config = load_config(ROOT / "config.yaml")
    config["features"]["extractor"] = extractor
    if clip_model:
        config["clip"] = {**config["clip"], "model": clip_model, "pretrained": None}
    return params(config)


def groups(spec: MotionSpec) -> dict[str, slice]:
    cells, flow = spec.grid**2, spec.flow_grid**2 * spec.orientations
    return {
        "energy + moving area": slice(0, 4 * cells),
        "direction histograms": slice(4 * cells, 4 * cells + flow),
        "colour moments": slice(4 * cells + flow + 1, spec.dim),
        "energy + directions": slice(0, 4 * cells + flow + 1),
        "motion (all)": slice(0, spec.dim),
    }


def features(manifest: Path, stage_params: dict, threads: int) -> tuple[np.ndarray, pd.DataFrame]:
    """Segment features of every manifest video, with split and segment label."""
    table = pd.read_csv(manifest)
    videos = table.assign(
        source="real", method=None, path=[str(manifest.parent / p) for p in table["path"]]
    )
    runtime = {"device": "cpu", "batch_size": 32, "workers": "auto", "threads": threads}
    with tempfile.TemporaryDirectory() as tmp:
        out = f"{tmp}/part.parquet"
        extract_videos(videos, stage_params, runtime, out, False)
        meta, feats = read_shards([out])
    order = meta.sort_values(["video_id", "segment"]).index.to_numpy()
    meta, feats = meta.loc[order].reset_index(drop=True), feats[order]
    intervals = table.set_index("video_id")["intervals"]
    events = []
    for video_id, part in meta.groupby("video_id", sort=False):
        frames = frame_labels(int(part["n_frames"].sum()), json.loads(intervals[video_id]))
        bounds = np.concatenate([[0], np.cumsum(part["n_frames"].to_numpy())])
        events += [frames[a:b].mean() > 0.5 for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return feats, meta.assign(event=events)


def probe(feats: np.ndarray, meta: pd.DataFrame) -> float:
    train, test = (meta["split"] == "train").to_numpy(), (meta["split"] == "test").to_numpy()
    scaler = StandardScaler().fit(feats[train])
    model = LogisticRegression(max_iter=3000).fit(
        scaler.transform(feats[train]), meta["event"][train]
    )
    return roc_auc_score(
        meta["event"][test], model.predict_proba(scaler.transform(feats[test]))[:, 1]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", type=Path)
    parser.add_argument(
        "--clip", action="append", default=[], help="open_clip model (random weights)"
    )
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    motion = extractor_params("motion")
    spec = MotionSpec.from_config(motion["features"]["motion"])
    feats, meta = features(args.manifest, motion, args.threads)
    print(f"{len(meta)} segments, {int(meta['event'].sum())} inside events")
    print("| features | segment AUC (logistic regression, test videos) |\n|---|---|")
    for name, cols in groups(spec).items():
        print(f"| {name} | {probe(feats[:, cols], meta):.3f} |")
    for model in args.clip:
        clip_feats, clip_meta = features(
            args.manifest, extractor_params("clip", model), args.threads
        )
        print(f"| CLIP {model}, random weights | {probe(clip_feats, clip_meta):.3f} |")


if __name__ == "__main__":
    main()

"""The I3D extractors through stage 6 on the two real videos (random weights): shards with
10 crops, segment counts equal to the CLIP extractor's, the public features' frame recipe;
and the generation-quality stage on a tiny run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from synthvad.features import jobs
from synthvad.features.chunks import extract_videos
from synthvad.features.i3d_extract import CROP_BOXES, clip_frame_indices, i3d_crops
from synthvad.io.shards import read_shards

VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"
SEGMENTS = {"length": 16, "keep_last_partial": True}
pytestmark = pytest.mark.skipif(not VIDEOS.is_dir(), reason="../shared/data/videos is absent")


def config(extractor: str, crops: str) -> dict:
    features = {
        "extractor": extractor, "crops": crops, "precision": "float32", "sampling": "even",
        "frames_per_segment": 2, "stride": 4, "ten_crop_resize": None, "real_chunks": 1,
        "clips_per_chunk": 250, "batch_size": 16, "workers": 0, "threads": 2,
        "motion": {}, "i3d": {"weights": None, "device": "cpu", "batch_size": 10},
    }  # fmt: skip
    clip = {"model": "RN50", "pretrained": None, "device": "cpu", "batch_size": 16}
    return {"features": features, "clip": clip, "segments": SEGMENTS, "seed": 0}


def real_videos(frames: int) -> pd.DataFrame:
    """The two real videos, cut to their first `frames` frames by the index's n_frames."""
    rows = [
        {"video_id": p.stem, "split": "train", "source": "real", "method": None, "label": 0,
         "class": None, "path": str(p), "n_frames": frames}
        for p in sorted(VIDEOS.glob("*.mp4"))
    ]  # fmt: skip
    return pd.DataFrame(rows)


def extract(cfg: dict, videos: pd.DataFrame, out: Path):
    extract_videos(videos, jobs.params(cfg), jobs.runtime(cfg), str(out), skip_corrupt=False)
    return read_shards([out])


@pytest.mark.parametrize(
    ("extractor", "crops", "dim"), [("i3d_resnet50", "ten", 2048), ("i3d", "center", 1024)]
)
def test_i3d_extractors_on_real_videos(extractor, crops, dim, tmp_path):
    torch.set_num_threads(2)
    videos = real_videos(24)  # segments of 16 and 8 frames: the last one is padded
    meta, feats = extract(config(extractor, crops), videos, tmp_path / "i3d.parquet")
    clip_meta, _ = extract(config("clip", "center"), videos, tmp_path / "clip.parquet")
    n_crops = 10 if crops == "ten" else 1
    assert feats.shape == (2 * 2 * n_crops, dim) and np.isfinite(feats).all()
    assert sorted(meta.crop.unique()) == list(range(n_crops))
    for vid in videos.video_id:
        mine, theirs = meta[meta.video_id == vid], clip_meta[clip_meta.video_id == vid]
        assert mine.segment.nunique() == theirs.segment.nunique() == 2
        assert mine[mine.crop == 0].n_frames.tolist() == [16, 8]
    # The crops of a segment differ (ten different views of a real frame).
    if n_crops == 10:
        first = feats[
            (meta.segment == 0).to_numpy() & (meta.video_id == videos.video_id[0]).to_numpy()
        ]
        assert len(first) == 10 and np.unique(first.round(4), axis=0).shape[0] == 10
    assert jobs.extractor_tag(config(extractor, crops)) == f"{jobs.I3D_TAGS[extractor]}-random"


def test_frame_recipe_of_the_public_features():
    # A frame of 256 x 340 with its pixel value = column index (mod 256): the boxes land
    # where the community's oversample puts them, mirrored views read the flipped frame.
    frame = np.broadcast_to((np.arange(340) % 256).astype(np.uint8)[None, :, None], (256, 340, 3))
    crops = i3d_crops(np.ascontiguousarray(frame)[None], "ten")[0]  # [10, 3, 224, 224]
    lefts = [int(c[0, 0, 0]) for c in crops[:5]]
    assert lefts == [left % 256 for _, left in CROP_BOXES] == [0, 116, 58, 0, 116]
    assert int(crops[5, 0, 0, 0]) == 339 % 256  # mirrored top-left starts at column 339
    assert i3d_crops(np.ascontiguousarray(frame)[None], "center").shape == (1, 1, 3, 224, 224)
    assert clip_frame_indices(0, 16) == list(range(16))
    assert clip_frame_indices(32, 40) == [32, 33, 34, 35, 36, 37, 38, 39] + [39] * 8
    assert clip_frame_indices(0, 32) == list(range(1, 32, 2))


def test_generation_quality_on_real_and_made_clips(tmp_path):
    from synthvad import generation

    torch.set_num_threads(2)
    paths = sorted(VIDEOS.glob("*.mp4"))
    index = pd.DataFrame(
        {"video_id": ["r0", "r1", "r2"], "path": [str(paths[0]), str(paths[1]), str(paths[0])],
         "split": "train", "label": [0, 0, 1], "class": [None, None, "fire"], "n_frames": 40}
    )  # fmt: skip
    filtered = pd.DataFrame(
        {"clip_id": ["g0", "g1", "g2"], "method": "gvvad", "class": ["fire", "fire", "theft"],
         "label": 1, "path": [str(paths[1]), str(paths[0]), str(paths[1])], "n_frames": 40,
         "keep": [True, True, False]}
    )  # fmt: skip
    index.to_parquet(tmp_path / "index.parquet")
    filtered.to_parquet(tmp_path / "filtered.parquet")
    cfg = {"inception_weights": None, "i3d_weights": None, "frames_per_video": 2,
           "clips_per_video": 1, "max_videos": 10, "kid_subsets": 5, "kid_subset_size": 100,
           "batch_size": 4, "per_class": True}  # fmt: skip
    out = tmp_path / "generation.json"
    result = generation.run(str(tmp_path / "index.parquet"), str(tmp_path / "filtered.parquet"), cfg, 0, "cpu", str(out))  # fmt: skip
    rows = {(r["method"], r["class"]): r for r in result["rows"]}
    assert set(rows) == {("gvvad", "all"), ("gvvad", "fire")}  # g2 was rejected
    assert rows[("gvvad", "all")]["reference_videos"] == 3 and rows[("gvvad", "all")]["clips"] == 2
    assert rows[("gvvad", "fire")]["reference"] == "real fire videos"
    for key in ("fid", "kid"):
        assert np.isfinite(rows[("gvvad", "all")][key])
    # One clip per video: the fire row has one real clip, too few for a distance.
    assert rows[("gvvad", "fire")]["fvd"] is None
    assert result["random_weights"] == ["inception_weights", "i3d_weights"]
    assert "RANDOM weights" in result["note"] and out.is_file()

import numpy as np
import pandas as pd

from synthvad.features import extract, video_features
from synthvad.io.shards import read_shards
from synthvad.io.video import write_video

SEG = {"length": 16, "keep_last_partial": True}


class MeanBundle:
    """Stands in for CLIP: the 'embedding' of a frame is its mean pixel value."""

    def encode_frames(self, frames, batch_size=32):
        return frames.reshape(len(frames), -1).mean(axis=1, keepdims=True).astype(np.float32)


def _video(path, n=40):
    # frame i is uniformly 5 * i grey, so sampled frames are known by index
    write_video(path, np.stack([np.full((32, 32, 3), 5 * i, np.uint8) for i in range(n)]), 16)


def test_segment_feature_is_the_mean_of_its_sampled_frames(tmp_path):
    _video(tmp_path / "v.mp4")
    bounds, feats = video_features(str(tmp_path / "v.mp4"), MeanBundle(), SEG, 2, 8)
    assert bounds == [(0, 16), (16, 32), (32, 40)]
    # samples: (4, 12) -> grey 20 and 60; (20, 28) -> 100, 140; (34, 38) -> 170, 190
    np.testing.assert_allclose(feats[:, 0], [40, 120, 180], atol=2)
    bounds, feats = video_features(
        str(tmp_path / "v.mp4"), MeanBundle(), {**SEG, "keep_last_partial": False}, 1, 8
    )
    assert len(bounds) == len(feats) == 2


def test_extract_writes_one_row_per_segment(tmp_path, monkeypatch):
    _video(tmp_path / "a.mp4", 40)
    _video(tmp_path / "b.mp4", 20)
    videos = pd.DataFrame(
        {
            "video_id": ["a", "b"],
            "path": [str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4")],
            "split": "test",
            "source": "real",
            "method": None,
            "label": [0, 1],
            "class": ["normal", "explosion"],
        }
    )
    monkeypatch.setattr("synthvad.models.load_clip", lambda cfg, seed: MeanBundle())
    config = {
        "clip": {"batch_size": 8},
        "seed": 0,
        "segments": SEG,
        "features": {"frames_per_segment": 1},
    }
    extract(videos, config, str(tmp_path / "part.parquet"))
    meta, feats = read_shards([tmp_path / "part.parquet"])
    assert meta.video_id.tolist() == ["a", "a", "a", "b", "b"]
    assert meta.n_frames.tolist() == [16, 16, 8, 16, 4]
    assert feats.shape == (5, 1)

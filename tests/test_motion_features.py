"""The weight-free motion extractor: shapes, determinism, response to motion, signal."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

from synthvad.datasets.demo import plan_videos, render_video
from synthvad.features.chunks import extract_videos
from synthvad.features.motion import MotionSpec, segment_descriptors, to_working_size
from synthvad.io.shards import read_shards
from synthvad.io.video import VideoError, write_video
from synthvad.segments import frame_labels, segment_bounds

from .conftest import SHARED_DATA
from .test_features import video_table

SEG = {"length": 16, "keep_last_partial": True}
MOTION_CFG = {
    "size": [64, 64],
    "grid": 4,
    "flow_grid": 2,
    "orientations": 8,
    "moving_threshold": 0.05,
}
SPEC = MotionSpec.from_config(MOTION_CFG)
PARAMS = {"features": {"extractor": "motion", "motion": MOTION_CFG}, "segments": SEG}
RUNTIME = {"device": "cpu", "batch_size": 16, "workers": 0, "threads": 1}
REAL_VIDEOS = sorted((SHARED_DATA / "videos").glob("*.mp4"))
N_MOTION = 4 * 16 + 4 * 8 + 1  # entries before the colour moments


def _square_clip(step: int, n: int = 16, size: int = 64) -> np.ndarray:
    """A white square on grey, moving `step` pixels per frame to the right."""
    frames = np.full((n, size, size, 3), 90, np.uint8)
    for t in range(n):
        x = 4 + step * t
        frames[t, 24:40, x : x + 12] = 250
    return frames


def _describe(frames: np.ndarray) -> torch.Tensor:
    return segment_descriptors(to_working_size(frames, SPEC)[None], SPEC)[0]


def test_dimension_and_layout():
    assert SPEC.dim == 10 * 16 + 4 * 8 + 1 == 193
    x = to_working_size(np.zeros((2 * 16, 30, 40, 3), np.uint8), SPEC)
    assert x.shape == (32, 3, 64, 64)
    assert segment_descriptors(x.view(2, 16, 3, 64, 64), SPEC).shape == (2, SPEC.dim)


def test_a_moving_object_responds_more_than_a_static_one():
    moving, static = _describe(_square_clip(3)), _describe(_square_clip(0))
    assert torch.all(static[:N_MOTION] == 0)
    energy = moving[:16]  # per-cell mean |dI|
    assert energy.sum() > 0.01 and moving[:N_MOTION].sum() > static[:N_MOTION].sum()
    # Same pixels overall: the frame's mean colour (cell means averaged) is the same.
    colour = (moving[N_MOTION : N_MOTION + 48], static[N_MOTION : N_MOTION + 48])
    torch.testing.assert_close(*(c.view(3, 16).mean(1) for c in colour), atol=2e-3, rtol=0)


def test_direction_histogram_follows_the_motion():
    right, left = _describe(_square_clip(3)), _describe(_square_clip(-3)[:, :, ::-1])
    hist_right = right[64:96].view(4, 8).sum(0)  # flow cells summed: bins of direction
    hist_left = left[64:96].view(4, 8).sum(0)
    # Bins cover (-pi, pi] from -pi: motion to the right (angle 0) is bins 3-4, left 0 and 7.
    assert hist_right[3:5].sum() > hist_right[[0, 7]].sum()
    assert hist_left[[0, 7]].sum() > hist_left[3:5].sum()


def test_a_blank_video_and_a_one_frame_segment_give_no_nan():
    blank = _describe(np.zeros((16, 32, 32, 3), np.uint8))
    single = _describe(np.full((1, 32, 32, 3), 200, np.uint8))
    assert torch.isfinite(blank).all() and torch.isfinite(single).all()
    assert torch.all(single[:N_MOTION] == 0)
    assert torch.allclose(single[N_MOTION : N_MOTION + 48], torch.tensor(200 / 255), atol=1e-6)


def test_extraction_is_deterministic_and_keeps_partial_segments(tmp_path):
    frames = _square_clip(2, n=37)
    write_video(tmp_path / "v.mp4", frames, 16)
    videos = video_table([tmp_path / "v.mp4"])
    outs = []
    for k in range(2):
        out = tmp_path / f"part{k}.parquet"
        assert extract_videos(videos, PARAMS, RUNTIME, str(out), False) == 1
        outs.append(read_shards([out]))
    (meta, feats), (_, again) = outs
    assert meta["segment"].tolist() == [0, 1, 2] and meta["n_frames"].tolist() == [16, 16, 5]
    assert feats.shape == (3, SPEC.dim) and np.array_equal(feats, again)


@pytest.mark.skipif(not REAL_VIDEOS, reason="no ../shared/data/videos")
def test_real_videos_through_workers_equal_in_process(tmp_path):
    videos = video_table(REAL_VIDEOS)
    results = []
    for workers in (0, 2):
        out = tmp_path / f"w{workers}.parquet"
        assert extract_videos(videos, PARAMS, {**RUNTIME, "workers": workers}, str(out), False) == 2
        meta, feats = read_shards([out])
        order = meta.sort_values(["video_id", "segment"]).index.to_numpy()
        results.append(feats[order])
        assert np.isfinite(feats).all()
    np.testing.assert_array_equal(*results)


def test_a_corrupt_video_is_named(tmp_path):
    (tmp_path / "bad.mp4").write_bytes(b"junk" * 100)
    with pytest.raises(VideoError, match="bad.mp4"):
        extract_videos(
            video_table([tmp_path / "bad.mp4"]), PARAMS, RUNTIME, str(tmp_path / "o.parquet"), False
        )


def _segment_set(features_of):
    """Segment features and event labels of a tiny rendered set (a few seconds each)."""
    cfg = {
        "scenes": ["street", "plaza"],
        "classes": ["fighting", "explosion", "running", "falling"],
        "width": 96,
        "height": 72,
        "fps": 16,
        "seconds": [4, 5],
        "train_normal": 4,
        "train_abnormal": 4,
        "test_normal": 3,
        "test_abnormal": 4,
    }
    rows = {"train": ([], []), "test": ([], [])}
    for spec in plan_videos(cfg, seed=3):
        frames, intervals = render_video(spec, cfg)
        labels = frame_labels(len(frames), intervals)
        for start, end in segment_bounds(len(frames), 16, False):
            rows[spec.split][0].append(features_of(frames[start:end]))
            rows[spec.split][1].append(labels[start:end].mean() > 0.5)
    return [(np.stack(x), np.array(y)) for x, y in rows.values()]


def _probe_auc(features_of) -> float:
    (x_train, y_train), (x_test, y_test) = _segment_set(features_of)
    scaler = StandardScaler().fit(x_train)
    model = LogisticRegression(max_iter=2000).fit(scaler.transform(x_train), y_train)
    return roc_auc_score(y_test, model.predict_proba(scaler.transform(x_test))[:, 1])


def test_the_descriptors_carry_event_signal():
    assert _probe_auc(lambda frames: _describe(frames).numpy()) > 0.75
    # The same probe on a feature that carries nothing stays at chance.
    assert _probe_auc(lambda frames: np.ones(4)) == pytest.approx(0.5)


def test_the_schema_defaults_are_the_documented_descriptor(default_config):
    assert MotionSpec.from_config(default_config["features"]["motion"]) == SPEC  # D = 193

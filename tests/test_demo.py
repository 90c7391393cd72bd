"""The embedded demo dataset: files, manifest and the anomalies inside the videos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synthvad.datasets.demo import generate_demo, plan_videos, render_video
from synthvad.index import MANIFEST_COLUMNS
from synthvad.io.video import probe, read_frames
from synthvad.render import EVENT_CLASSES

TINY = {
    "scenes": ["street", "plaza", "corridor"],
    "classes": ["explosion", "running"],
    "width": 96,
    "height": 64,
    "fps": 16,
    "seconds": [2, 3],
    "train_normal": 1,
    "train_abnormal": 1,
    "test_normal": 1,
    "test_abnormal": 2,
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    out = tmp_path_factory.mktemp("demo")
    return out, generate_demo(TINY, out, seed=0)


def test_manifest_matches_counts_and_labels(demo: tuple[Path, pd.DataFrame]) -> None:
    out, manifest = demo
    assert list(manifest.columns) == list(MANIFEST_COLUMNS)
    counts = manifest.groupby(["split", "label"]).size().to_dict()
    assert counts == {("train", 0): 1, ("train", 1): 1, ("test", 0): 1, ("test", 1): 2}
    assert (manifest.loc[manifest.label == 0, "class"] == "normal").all()
    assert set(manifest.loc[manifest.label == 1, "class"]) <= set(TINY["classes"])
    assert set(manifest.loc[manifest.split == "test"].query("label == 1")["class"]) == {
        "explosion",
        "running",
    }
    assert manifest.video_id.is_unique
    on_disk = pd.read_csv(out / "manifest.csv", keep_default_na=False)
    pd.testing.assert_frame_equal(on_disk, manifest)


def test_videos_decode_with_intervals_inside(demo: tuple[Path, pd.DataFrame]) -> None:
    out, manifest = demo
    for row in manifest.itertuples():
        assert not Path(row.path).is_absolute() and "\\" not in row.path
        assert row.path == f"videos/{row.split}/{row.video_id}.mp4"
        info = probe(out / row.path)
        assert (info.width, info.height) == (TINY["width"], TINY["height"])
        assert info.fps == pytest.approx(TINY["fps"])
        lo, hi = TINY["seconds"]
        assert lo * TINY["fps"] <= info.n_frames <= hi * TINY["fps"]
        intervals = json.loads(row.intervals)
        if row.label == 0:
            assert intervals == []
        else:
            assert len(intervals) == 1
            start, end = intervals[0]
            assert 0 < start < end < info.n_frames  # not at the very start; some normal tail


@pytest.mark.parametrize("cls", ["explosion", "running"])
def test_written_anomaly_moves_more_than_the_rest(
    demo: tuple[Path, pd.DataFrame], cls: str
) -> None:
    out, manifest = demo
    row = manifest[(manifest.split == "test") & (manifest["class"] == cls)].iloc[0]
    frames = read_frames(out / row.path).astype(np.float32)
    motion = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))  # motion[i]: frame i -> i+1
    ((start, end),) = json.loads(row.intervals)
    inside = motion[start : end - 1].mean()
    outside = np.concatenate([motion[: start - 1], motion[end:]]).mean()
    assert inside > 1.25 * outside, (inside, outside)


def test_same_seed_same_pixels_other_seed_other_pixels() -> None:
    spec = next(s for s in plan_videos(TINY, seed=3) if s.label == 1)
    frames_a, intervals_a = render_video(spec, TINY)
    frames_b, intervals_b = render_video(spec, TINY)
    np.testing.assert_array_equal(frames_a, frames_b)
    assert intervals_a == intervals_b
    other = next(s for s in plan_videos(TINY, seed=4) if s.video_id == spec.video_id)
    frames_c, _ = render_video(other, TINY)
    assert frames_c.shape != frames_a.shape or not np.array_equal(frames_a, frames_c)


def test_a_video_does_not_depend_on_other_group_counts() -> None:
    more = {**TINY, "train_normal": 4}
    spec = next(s for s in plan_videos(TINY, seed=0) if s.video_id == "test_abnormal_001")
    same = next(s for s in plan_videos(more, seed=0) if s.video_id == "test_abnormal_001")
    assert spec == same


def test_default_plan_puts_every_class_in_both_splits() -> None:
    cfg = {
        **TINY,
        "classes": list(EVENT_CLASSES),
        "train_normal": 10,
        "train_abnormal": 6,
        "test_normal": 6,
        "test_abnormal": 6,
    }
    specs = plan_videos(cfg, seed=0)
    for split in ("train", "test"):
        assert {s.cls for s in specs if s.split == split and s.label} == set(EVENT_CLASSES)
        assert {s.scene for s in specs if s.split == split} == set(cfg["scenes"])
    assert all(s.scene == "street" for s in specs if s.cls == "road_accident")


def test_unknown_class_fails_before_writing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="vandalism"):
        generate_demo({**TINY, "classes": ["vandalism"]}, tmp_path, seed=0)
    assert not (tmp_path / "manifest.csv").exists()
    assert not (tmp_path / "videos").exists()


def test_parallel_rendering_writes_the_same_files(demo, tmp_path) -> None:
    out, manifest = demo
    parallel = generate_demo(TINY, tmp_path, seed=0, processes=2)
    pd.testing.assert_frame_equal(parallel, manifest)
    for rel in manifest["path"]:
        assert (tmp_path / rel).read_bytes() == (out / rel).read_bytes()

import os

import numpy as np
import pandas as pd
import pytest

from synthvad.io.atomic import atomic_dir, atomic_path, write_text
from synthvad.io.shards import read_shards, write_shard
from synthvad.io.video import VideoError, probe, read_frames, write_video

from .conftest import SHARED_DATA


def test_video_roundtrip(tmp_path):
    frames = np.stack([np.full((120, 160, 3), 10 * i, np.uint8) for i in range(20)])
    path = tmp_path / "v.mp4"
    assert write_video(path, frames, 16) == 20
    info = probe(path)
    assert (info.n_frames, info.fps, info.width, info.height) == (20, 16.0, 160, 120)
    back = read_frames(path, [0, 19])
    assert back.shape == (2, 120, 160, 3)
    assert abs(float(back[1].mean()) - 190) < 3
    with pytest.raises(VideoError, match="out of range"):
        read_frames(path, [20])


def test_corrupt_and_missing_videos_name_the_file(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00not a video" * 50)
    with pytest.raises(VideoError, match="bad.mp4"):
        probe(bad)
    with pytest.raises(VideoError, match="not found"):
        probe(tmp_path / "missing.mp4")


def test_odd_size_is_rejected_before_writing(tmp_path):
    with pytest.raises(ValueError, match="even"):
        write_video(tmp_path / "odd.mp4", np.zeros((4, 121, 160, 3), np.uint8), 16)
    assert not list(tmp_path.iterdir())


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.parquet"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(not (SHARED_DATA / "videos").is_dir(), reason="shared data not present")
def test_real_h264_videos_decode():
    for path in sorted((SHARED_DATA / "videos").glob("*.mp4")):
        info = probe(path)
        assert info.n_frames > 16 and info.width > 0
        assert read_frames(path, [0, info.n_frames - 1]).shape[0] == 2


def _meta(video, n, split="train"):
    return pd.DataFrame(
        {
            "video_id": video,
            "split": split,
            "source": "real",
            "method": None,
            "label": 0,
            "class": "normal",
            "segment": range(n),
            "n_frames": 16,
            "crop": 0,
        }
    )


def test_shard_roundtrip_and_checks(tmp_path):
    feats = np.arange(12, dtype=np.float32).reshape(3, 4)
    write_shard(_meta("a", 3), feats, tmp_path / "a.parquet")
    write_shard(_meta("b", 1), np.ones((1, 4), np.float32), tmp_path / "b.parquet")
    meta, f = read_shards([tmp_path / "a.parquet", tmp_path / "b.parquet"])
    assert meta.video_id.tolist() == ["a", "a", "a", "b"]
    np.testing.assert_array_equal(f[:3], feats)
    with pytest.raises(ValueError, match="appears in two shards"):
        read_shards([tmp_path / "a.parquet", tmp_path / "a.parquet"])
    write_shard(_meta("c", 1), np.ones((1, 5), np.float32), tmp_path / "c.parquet")
    with pytest.raises(ValueError, match="feature size"):
        read_shards([tmp_path / "a.parquet", tmp_path / "c.parquet"])


def test_atomic_dir_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "plots"
    target.mkdir()
    (target / "old.png").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "new.png").write_text("half")
        raise RuntimeError("killed")
    assert sorted(os.listdir(tmp_path)) == ["plots"]
    assert os.listdir(target) == ["old.png"]
    with atomic_dir(target) as tmp:
        (tmp / "new.png").write_text("new")
    assert os.listdir(target) == ["new.png"]
    assert sorted(os.listdir(tmp_path)) == ["plots"]


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_outputs_get_the_mode_of_an_ordinary_write(tmp_path, umask):
    previous = os.umask(umask)
    try:
        write_text("x", tmp_path / "table.csv")
        with atomic_dir(tmp_path / "plots") as tmp:
            (tmp / "a.png").write_text("png")
        (tmp_path / "plain.csv").write_text("x")  # what the group expects
        (tmp_path / "plain").mkdir()
    finally:
        os.umask(previous)
    mode = lambda p: p.stat().st_mode & 0o777  # noqa: E731
    assert mode(tmp_path / "table.csv") == mode(tmp_path / "plain.csv") == 0o666 & ~umask
    assert mode(tmp_path / "plots") == mode(tmp_path / "plain") == 0o777 & ~umask


def test_a_rerun_removes_the_temporaries_of_a_killed_job(tmp_path):
    (tmp_path / ".part-real.parquet.k1ll3d.part").write_bytes(b"half a shard")
    (tmp_path / ".plots.k1ll3d.part").mkdir()
    (tmp_path / ".plots.k1ll3d.part" / "a.png").write_text("half")
    (tmp_path / ".other.parquet.k1ll3d.part").write_bytes(b"another output's")
    write_text("done", tmp_path / "part-real.parquet")
    with atomic_dir(tmp_path / "plots") as tmp:
        (tmp / "b.png").write_text("png")
    assert sorted(os.listdir(tmp_path)) == [
        ".other.parquet.k1ll3d.part", "part-real.parquet", "plots"
    ]  # fmt: skip

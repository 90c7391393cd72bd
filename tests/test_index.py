import json

import numpy as np
import pandas as pd
import pytest

from synthvad.index import ManifestError, index_videos, read_manifest
from synthvad.io.video import VideoError, write_video


def _dataset(tmp_path, corrupt=True):
    frames = np.zeros((40, 32, 32, 3), np.uint8)
    frames[:, :, :16] = 200
    write_video(tmp_path / "a.mp4", frames, 16)
    write_video(tmp_path / "b.mp4", frames, 16)
    if corrupt:
        (tmp_path / "c.mp4").write_bytes(b"broken" * 100)
    rows = [
        ("a", "a.mp4", "train", 0, "normal", "street", "[]"),
        ("b", "b.mp4", "test", 1, "explosion", "street", json.dumps([[10, 60]])),
    ]
    if corrupt:
        rows.append(("c", "c.mp4", "test", 0, "normal", "plaza", "[]"))
    cols = ["video_id", "path", "split", "label", "class", "scene", "intervals"]
    pd.DataFrame(rows, columns=cols).to_csv(tmp_path / "manifest.csv", index=False)
    return tmp_path / "manifest.csv"


def build_index(manifest, on_corrupt):
    return index_videos(read_manifest(manifest), on_corrupt, str(manifest))


def test_corrupt_video_is_skipped_by_name(tmp_path, caplog):
    index, gt, rejected = build_index(_dataset(tmp_path), "skip")
    assert index.video_id.tolist() == ["a", "b"]
    assert index.n_frames.tolist() == [40, 40]
    assert rejected.video_id.tolist() == ["c"]
    assert "skipping video c" in caplog.text
    # the interval is clipped to the video's 40 frames
    assert gt.to_dict("records") == [{"video_id": "b", "start": 10, "end": 40}]


def test_corrupt_video_fails_the_run_with_its_name(tmp_path):
    with pytest.raises(VideoError, match="c.mp4"):
        build_index(_dataset(tmp_path), "fail")


def test_manifest_errors_name_the_row(tmp_path):
    manifest = _dataset(tmp_path, corrupt=False)
    df = pd.read_csv(manifest)
    df.loc[1, "intervals"] = "[[5]]"
    df.to_csv(manifest, index=False)
    with pytest.raises(ManifestError, match="'b'"):
        read_manifest(manifest)
    df.loc[1, "intervals"] = "[]"
    df.loc[0, "split"] = "val"
    df.to_csv(manifest, index=False)
    with pytest.raises(ManifestError, match="'a' has split"):
        read_manifest(manifest)

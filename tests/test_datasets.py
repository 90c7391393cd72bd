"""Benchmark parsers (UCF-Crime, ShanghaiTech, XD-Violence): the real official files,
and Form A fixtures (a few small videos in each official layout with real annotation
lines for them) indexed by stage 0."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from synthvad import index as stage0
from synthvad.config import ConfigError, validate_config
from synthvad.datasets import shanghaitech, stage0_inputs, ucf_crime, video_table, xd_violence
from synthvad.datasets.common import DatasetError, intervals_from_mask, read_lines
from synthvad.io.video import probe, read_frames, write_video

from .conftest import ROOT, SHARED_DATA

ANNOTATIONS = SHARED_DATA / "annotations"
needs_shared = pytest.mark.skipif(not ANNOTATIONS.is_dir(), reason="shared data not present")


# --- the real official files -------------------------------------------------------------


@needs_shared
def test_real_ucf_crime_files():
    ann = ucf_crime.load(ANNOTATIONS / "ucf-crime")
    test = ucf_crime.parse_split_list(ANNOTATIONS / "ucf-crime" / ucf_crime.TEST_LIST)
    train = ucf_crime.parse_split_list(ANNOTATIONS / "ucf-crime" / ucf_crime.TRAIN_LIST)
    labels = [ann.label(video_id, "test") for video_id, _ in test]
    assert len(labels) == 290
    assert sum(v.label for v in labels) == 140
    assert all(v.intervals for v in labels if v.label)
    assert sum(v.cls == "Normal" and not v.intervals for v in labels) == 150
    assert len(train) == 1610 and sum(ann.label(v, "train").label for v, _ in train) == 810
    # [start, end) summed: 84,189 frames; the anchors' gt-ucf.npy has 84,128 after
    # clipping to their frame counts, so the intervals are half-open, not inclusive.
    assert sum(e - s for v in labels for s, e in v.intervals) == 84_189
    assert ann.label("Burglary021_x264", "test").intervals == [(60, 200), (840, 1340)]


@needs_shared
def test_real_shanghaitech_files():
    ann = shanghaitech.load(ANNOTATIONS / "shanghaitech")
    assert len(ann.masks) == 107
    counts = {}
    for split, name in (("train", "SH_Train.txt"), ("test", "SH_Test.txt")):
        labels = [
            ann.label(v, split)
            for v in shanghaitech.parse_list(ANNOTATIONS / "shanghaitech" / name)
        ]
        counts[split] = (len(labels), sum(v.label for v in labels))
        assert all(not v.intervals for v in labels if split == "train")
    # 107 masks = the 63 abnormal training and 44 abnormal test videos of the weak split.
    assert counts == {"train": (238, 63), "test": (199, 44)}
    mask = np.load(ANNOTATIONS / "shanghaitech" / "test_frame_mask" / "01_0014.npy")
    assert sum(e - s for s, e in ann.label("01_0014", "test").intervals) == mask.sum()


@needs_shared
def test_real_xd_violence_annotations():
    intervals = xd_violence.parse_annotations(ANNOTATIONS / "xd-violence" / "annotations.txt")
    assert len(intervals) == 500
    ann = xd_violence.load(ANNOTATIONS / "xd-violence")
    assert all(ann.label(name, "test").label == 1 for name in intervals)
    # 5 names carry ".mp4" in the file; the id is the name without it.
    assert "v=S-7rRLrxnVQ__#1_label_B4-0-0" in intervals
    assert intervals["v=S-7rRLrxnVQ__#1_label_B4-0-0"] == [(0, 1517), (1970, 3038)]


# --- parsing details ---------------------------------------------------------------------


def test_lines_without_final_newline_or_with_crlf(tmp_path):
    path = tmp_path / "SH_Test.txt"
    path.write_bytes(b"01_0015\r\n\r\n01_001\r\n13_006")
    assert [line for _, line in read_lines(path)] == ["01_0015", "01_001", "13_006"]


def test_mask_runs_become_half_open_intervals():
    mask = np.array([0, 1, 1, 0, 0, 1, 1, 1])
    assert intervals_from_mask(mask) == [(1, 3), (5, 8)]


def test_malformed_annotation_lines_name_file_and_line(tmp_path):
    path = tmp_path / "Temporal_Anomaly_Annotation.txt"
    path.write_text(
        "Abuse028_x264  Abuse  165  240  -1  -1\nArson011_x264  Arson  50  -1  -1  -1\n"
    )
    with pytest.raises(DatasetError, match=r"Temporal_Anomaly_Annotation.txt:2: half-empty"):
        ucf_crime.parse_temporal(path)
    path = tmp_path / "annotations.txt"
    path.write_text("v=cEOM18n8fhU__#1_label_G-0-0 2133 2750 3000\n")
    with pytest.raises(DatasetError, match=r"annotations.txt:1: odd number"):
        xd_violence.parse_annotations(path)


def test_label_errors_name_the_video(tmp_path):
    (tmp_path / ucf_crime.TEMPORAL).write_text("Abuse028_x264  Abuse  165  240  -1  -1")
    ann = ucf_crime.load(tmp_path)
    with pytest.raises(DatasetError, match="'Arson011_x264' is not in"):
        ann.label("Arson011_x264", "test")
    assert ann.label("Arson011_x264", "train").label == 1  # train labels are weak
    with pytest.raises(DatasetError, match="'clip7'"):
        ann.label("clip7", "train")
    (tmp_path / "annotations.txt").write_text("x__#1_label_B1-0-0 3 9\n")
    xd = xd_violence.load(tmp_path)
    with pytest.raises(DatasetError, match="violent test video 'y__#1_label_G-0-0'"):
        xd.label("y__#1_label_G-0-0", "test")
    assert xd.label("y__#1_label_A", "test").label == 0
    (tmp_path / "test_frame_mask").mkdir()
    sht = shanghaitech.load(tmp_path)
    with pytest.raises(DatasetError, match="'01_0014' is abnormal .* no mask"):
        sht.label("01_0014", "test")
    assert sht.label("01_001", "train").label == 0


# --- Form A fixtures: videos + official files, indexed by stage 0 -------------------------


def _frames(n: int, size: int = 32) -> np.ndarray:
    frames = np.zeros((n, size, size, 3), np.uint8)
    frames[:, :, : size // 2] = np.arange(n, dtype=np.uint8)[:, None, None, None]
    return frames


def _index(tmp_path, data_cfg):
    out = {k: str(tmp_path / f"{k}.parquet") for k in ("index", "gt", "rejected")}
    stage0.run(data_cfg, None, out["index"], out["gt"], out["rejected"])
    return tuple(pd.read_parquet(out[k]) for k in ("index", "gt", "rejected"))


def test_ucf_crime_videos_found_across_part_folders(tmp_path):
    ann = tmp_path / "lists"
    ann.mkdir()
    (ann / ucf_crime.TRAIN_LIST).write_text(
        "Abuse/Abuse001_x264.mp4\nTraining_Normal_Videos_Anomaly/Normal_Videos001_x264.mp4\n"
    )
    (ann / ucf_crime.TEST_LIST).write_text(
        "RoadAccidents/RoadAccidents021_x264.mp4\n"
        "Testing_Normal_Videos_Anomaly/Normal_Videos_003_x264.mp4"
    )
    (ann / ucf_crime.TEMPORAL).write_text(  # the real lines of these two test videos
        "RoadAccidents021_x264  RoadAccidents  30  90  -1  -1  \n"
        "Normal_Videos_003_x264  Normal  -1  -1  -1  -1  \n"
    )
    root = tmp_path / "UCF_Crime"
    for rel in (
        "Anomaly-Videos-Part-1/Abuse/Abuse001_x264.mp4",  # not where the list says
        "Training-Normal-Videos-Part-1/Normal_Videos001_x264.mp4",
        "RoadAccidents/RoadAccidents021_x264.mp4",
        "Testing_Normal_Videos_Anomaly/Normal_Videos_003_x264.mp4",
    ):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        write_video(root / rel, _frames(70), 30)
    data = {"kind": "ucf_crime", "root": str(root), "annotations": str(ann), "on_corrupt": "fail"}
    index, gt, rejected = _index(tmp_path, data)
    assert dict(zip(index.video_id, index.label, strict=True)) == {
        "Abuse001_x264": 1,
        "Normal_Videos001_x264": 0,
        "RoadAccidents021_x264": 1,
        "Normal_Videos_003_x264": 0,
    }
    assert set(index["class"]) == {"Abuse", "Normal", "RoadAccidents"}
    assert index.n_frames.tolist() == [70] * 4 and rejected.empty
    # the annotated 30..90 is clipped to the video's 70 frames
    assert gt.to_dict("records") == [{"video_id": "RoadAccidents021_x264", "start": 30, "end": 70}]
    assert stage0_inputs(data)["annotations"][-1].endswith(ucf_crime.TEMPORAL)


def test_shanghaitech_videos_and_jpeg_frame_folders(tmp_path):
    ann = tmp_path / "sht"
    (ann / "test_frame_mask").mkdir(parents=True)
    (ann / "SH_Train.txt").write_text("01_001\n01_0014")
    (ann / "SH_Test.txt").write_text("01_0015\n02_002")
    mask = np.zeros(45, np.uint8)
    mask[20:33] = 1
    np.save(ann / "test_frame_mask" / "01_0015.npy", mask)
    np.save(ann / "test_frame_mask" / "01_0014.npy", np.ones(40, np.uint8))
    root = tmp_path / "ShanghaiTech"
    (root / "training" / "videos").mkdir(parents=True)
    write_video(root / "training" / "videos" / "01_001.mp4", _frames(40), 24)
    write_video(root / "training" / "videos" / "02_002.mp4", _frames(40), 24)
    for name, n in (("01_0014", 40), ("01_0015", 45)):
        folder = root / "testing" / "frames" / name
        folder.mkdir(parents=True)
        for i, frame in enumerate(_frames(n)):  # not zero-padded: 2.jpg sorts before 10.jpg
            Image.fromarray(frame).save(folder / f"{i}.jpg", quality=95)
    data = {
        "kind": "shanghaitech",
        "root": str(root),
        "annotations": str(ann),
        "on_corrupt": "fail",
    }
    index, gt, _ = _index(tmp_path, data)
    rows = index.set_index("video_id")
    assert rows.loc["01_0015", "n_frames"] == 45 and np.isnan(rows.loc["01_0015", "fps"])
    assert rows.loc["01_001", "fps"] == 24.0
    assert rows.label.to_dict() == {"01_001": 0, "01_0014": 1, "01_0015": 1, "02_002": 0}
    assert rows.scene.to_dict()["02_002"] == "02"
    assert gt.to_dict("records") == [{"video_id": "01_0015", "start": 20, "end": 33}]
    frames = read_frames(rows.loc["01_0015", "path"], [2, 10, 44])  # frame order kept
    assert [int(f[0, 0, 0]) for f in frames] == [2, 10, 44]
    assert probe(rows.loc["01_0014", "path"]).width == 32


def test_xd_violence_videos_by_split_folder(tmp_path):
    ann = tmp_path / "xd"
    ann.mkdir()
    (ann / "annotations.txt").write_text(  # a real line; the file ends without a newline
        "Kingsman.The.Golden.Circle.2017__#00-41-22_00-41-32_label_B2-0-0 14 44"
    )
    root = tmp_path / "XD"
    names = {
        "train": [
            "v=cEOM18n8fhU__#1_label_G-0-0",
            "A.Beautiful.Mind.2001__#00-01-45_00-02-50_label_A",
        ],
        "test": [
            "Kingsman.The.Golden.Circle.2017__#00-41-22_00-41-32_label_B2-0-0",
            "v=8cTqh9tMz_I__#1_label_A",
        ],
    }
    for split, videos in names.items():
        (root / split).mkdir(parents=True)
        for name in videos:
            write_video(root / split / f"{name}.mp4", _frames(50), 24)
    data = {"kind": "xd_violence", "root": str(root), "annotations": str(ann)}
    data = validate_config(_config(data))["data"]  # fills split_dirs
    table = video_table(data)
    assert table.groupby("split").label.sum().to_dict() == {"test": 1, "train": 1}
    assert set(table["class"]) == {"Explosion", "Normal", "Shooting"}
    _, gt, _ = _index(tmp_path, data)
    assert gt.to_dict("records") == [{"video_id": names["test"][0], "start": 14, "end": 44}]


# --- config checks -----------------------------------------------------------------------


def _config(data, experiments=None, clip=None):
    return {
        "name": "bench",
        "data": copy.deepcopy(data),
        "classes": [{"name": "fighting", "positive": "two people fighting"}],
        "experiments": experiments or {"real": {}},
        **({"clip": clip} if clip else {}),
    }


FORM_B = {
    "kind": "ucf_crime",
    "annotations": "ann",
    "features": {"extractor": "i3d-resnet50", "train_list": "a.list", "test_list": "b.list"},
}


def test_form_b_refuses_synthetic_clips_of_another_extractor():
    gvvad = {"real": {}, "gvvad": {"synthetic": ["gvvad"], "alpha": 0.5}}
    with pytest.raises(ConfigError, match=r"data.features.extractor.*'i3d-resnet50'.*clip-ViT"):
        validate_config(_config(FORM_B, gvvad))
    same = copy.deepcopy(FORM_B)
    same["features"]["extractor"] = "clip-ViT-B-16-openai"
    validate_config(_config(same, gvvad, clip={"model": "ViT-B-16", "pretrained": "openai"}))
    with pytest.raises(ConfigError, match="PA-VAD retrieves"):
        validate_config(_config(same, {"pavad": {"real_abnormal": False, "synthetic": ["pavad"]}}))


def test_benchmark_needs_one_form():
    with pytest.raises(ConfigError, match="either data.root .* or data.features"):
        validate_config(_config({**FORM_B, "root": "/videos"}))
    with pytest.raises(ConfigError, match="'annotations' is a required property"):
        validate_config(_config({"kind": "shanghaitech", "root": "/videos"}))
    with pytest.raises(ConfigError, match="data.features"):
        validate_config(
            _config({"kind": "manifest", "manifest": "m.csv", "features": FORM_B["features"]})
        )


@pytest.mark.parametrize("path", sorted((ROOT / "config").glob("*.yaml")), ids=lambda p: p.name)
def test_example_benchmark_configs_validate(path):
    from synthvad.config import load_config

    config = load_config(path)
    assert config["data"]["kind"] in ("ucf_crime", "shanghaitech", "xd_violence")

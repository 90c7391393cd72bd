"""Form B: pre-extracted .npy features in each common layout -> feature shard, index and
ground truth; inconsistent input is rejected naming the file."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synthvad.datasets.import_features import FeatureImportError, import_features
from synthvad.io.shards import read_shards
from synthvad.metrics import align_scores_to_ground_truth
from synthvad.segments import read_intervals

# Real UCF-Crime names; the test videos with their real annotation lines.
TRAIN = {"Abuse001_x264": 7, "Arson002_x264": 9, "Normal_Videos001_x264": 8}
TEST = {"RoadAccidents021_x264": 5, "Explosion039_x264": 11, "Normal_Videos_003_x264": 6}
TEMPORAL = (
    "RoadAccidents021_x264  RoadAccidents  30  90  -1  -1  \n"
    "Explosion039_x264  Explosion  60  150  -1  -1  \n"
    "Normal_Videos_003_x264  Normal  -1  -1  -1  -1  "  # no final newline, as in the release
)
DIM = 6
SEG = {"length": 16, "keep_last_partial": True}


def _features(name: str, crops: int) -> np.ndarray:
    """[C, T, D] with values that encode (video, crop, segment) for checking the import."""
    n_segments = {**TRAIN, **TEST}[name]
    base = sorted({**TRAIN, **TEST}).index(name) * 1000
    c, t = np.meshgrid(np.arange(crops), np.arange(n_segments), indexing="ij")
    return np.repeat((base + 100 * c + t)[..., None], DIM, axis=2).astype(np.float32)


def _write(tmp_path, layout: str, crops: int = 3, suffix: str = "", list_kind: str = "list"):
    """Feature files of every video in `layout`, lists, and the annotation folder."""
    feats = tmp_path / "features"
    feats.mkdir(exist_ok=True)
    ann = tmp_path / "ann"
    ann.mkdir(exist_ok=True)
    (ann / "Temporal_Anomaly_Annotation.txt").write_text(TEMPORAL)
    lists = {}
    for split, videos in (("train", TRAIN), ("test", TEST)):
        entries = []
        for name in videos:
            array = _features(name, crops)
            if layout == "crop_files":
                home = feats / name[:5] if list_kind == "classdirs" else feats
                home.mkdir(exist_ok=True)
                for c in range(crops):
                    np.save(home / f"{name}{suffix}__{c}.npy", array[c])
                    entries.append(f"{name}{suffix}__{c}.npy")
            else:
                np.save(
                    feats / f"{name}{suffix}.npy",
                    {"t_d": array[0], "t_crop_d": array.transpose(1, 0, 2), "crop_t_d": array}[
                        layout
                    ],
                )
                entries.append(f"{name}{suffix}.npy")
        if list_kind == "csv":  # VadCLIP: path,label
            path = tmp_path / f"{split}.csv"
            pd.DataFrame({"path": [f"features/{e}" for e in entries], "label": "x"}).to_csv(
                path, index=False
            )
        elif list_kind == "base":  # one line per video, crop files beside it (UR-DMU, PEL4VAD)
            path = tmp_path / f"{split}.list"
            names = sorted({e.split("__")[0] for e in entries})
            path.write_text("\n".join(f"features/{n}.npy" for n in names))
        elif list_kind == "classdirs":  # base names, crop files in class folders under root
            path = tmp_path / f"{split}.list"
            path.write_text("\n".join(f"/home/someone/UCF/{n}{suffix}.npy" for n in videos))
        else:  # RTFM: absolute paths of the authors' machine, found by name under root
            path = tmp_path / f"{split}.list"
            path.write_text("\n".join(f"/home/someone/ucf_i3d/{e}" for e in entries) + "\n")
        lists[split] = str(path)
    return {
        "kind": "ucf_crime",
        "annotations": str(ann),
        "features": {
            "extractor": "i3d",
            "train_list": lists["train"],
            "test_list": lists["test"],
            "root": str(feats) if list_kind in ("list", "classdirs") else None,
            "layout": "auto",
            "name_suffix": suffix,
            "crops": None,
            "gt_padding": "repeat_last",
            "generated_pattern": "GeneratedVideos|description",  # the schema's default
        },
    }


def _run(tmp_path, data, seg=SEG):
    out = {k: str(tmp_path / f"{k}.parquet") for k in ("index", "gt", "rejected", "shard")}
    import_features(data, seg, out["index"], out["gt"], out["rejected"], out["shard"])
    return out


@pytest.mark.parametrize(
    ("layout", "crops", "list_kind"),
    [
        ("t_d", 1, "list"),
        ("t_crop_d", 10, "list"),  # RTFM [T, 10, D]
        ("crop_t_d", 10, "list"),  # GV-VAD / LAP [10, T, D]
        ("crop_files", 5, "csv"),  # VadCLIP: every crop file listed, CSV path,label
        ("crop_files", 3, "base"),  # UR-DMU / PEL4VAD: name.npy listed, name__k.npy on disk
        ("crop_files", 2, "classdirs"),  # the same, files in per-class folders below root
    ],
)
def test_layouts_import_into_the_shard_contract(tmp_path, layout, crops, list_kind):
    out = _run(tmp_path, _write(tmp_path, layout, crops, list_kind=list_kind))
    meta, feats = read_shards([out["shard"]])
    assert len(meta) == crops * sum({**TRAIN, **TEST}.values())
    assert set(meta.crop) == set(range(crops)) and set(meta.source) == {"real"}
    for (video, crop, segment), row in zip(
        meta[["video_id", "crop", "segment"]].itertuples(index=False), feats, strict=True
    ):
        assert row[0] == _features(video, crops)[crop, segment, 0]
    index = pd.read_parquet(out["index"]).set_index("video_id")
    assert index.n_frames.to_dict() == {k: 16 * t for k, t in {**TRAIN, **TEST}.items()}
    assert index.split.value_counts().to_dict() == {"train": 3, "test": 3}
    assert index.label.to_dict()["Normal_Videos001_x264"] == 0
    assert (meta.n_frames == 16).all()


def test_ground_truth_is_clipped_to_the_feature_frames(tmp_path, caplog):
    out = _run(tmp_path, _write(tmp_path, "t_d", 1))
    gt = read_intervals(out["gt"])
    # RoadAccidents021: 5 segments = 80 frames, annotated 30..90 -> 30..80 (warned)
    assert gt == {"RoadAccidents021_x264": [(30, 80)], "Explosion039_x264": [(60, 150)]}
    assert "RoadAccidents021_x264" in caplog.text and "clipped" in caplog.text
    # the segmentation of index n_frames matches the shard's segments, so scores align
    meta, _ = read_shards([out["shard"]])
    index = pd.read_parquet(out["index"]).set_index("video_id")
    for keep in (True, False):
        frames = meta[meta.video_id == "Explosion039_x264"].n_frames.to_numpy()
        scores, labels = align_scores_to_ground_truth(
            "Explosion039_x264",
            np.zeros(len(frames)),
            frames,
            gt["Explosion039_x264"],
            int(index.loc["Explosion039_x264", "n_frames"]),
            16,
            keep,
        )
        assert len(scores) == len(labels) == 11 * 16 and labels.sum() == 90
    with pytest.raises(ValueError, match="'Explosion039_x264'"):
        align_scores_to_ground_truth(
            "Explosion039_x264", np.zeros(10), [16] * 10, [], 176, 16, True
        )


def test_name_suffix_and_crop_selection(tmp_path):
    data = _write(tmp_path, "crop_files", 4, suffix="_i3d", list_kind="base")
    data["features"]["crops"] = [2]
    meta, _ = read_shards([_run(tmp_path, data)["shard"]])
    assert set(meta.crop) == {2} and "Abuse001_x264" in set(meta.video_id)
    data["features"]["name_suffix"] = ""
    with pytest.raises(FeatureImportError, match="name_suffix"):
        _run(tmp_path, data)


def test_ambiguous_shapes_need_the_layout(tmp_path):
    data = _write(tmp_path, "crop_t_d", 3)
    for name in {**TRAIN, **TEST}:  # every video 3 x 3 x D: crops or segments first?
        np.save(tmp_path / "features" / f"{name}.npy", np.zeros((3, 3, DIM), np.float32))
    with pytest.raises(FeatureImportError, match="ambiguous.*data.features.layout"):
        _run(tmp_path, data)
    data["features"]["layout"] = "crop_t_d"
    meta, _ = read_shards([_run(tmp_path, data)["shard"]])
    assert meta.segment.max() == 2


@pytest.mark.parametrize(
    ("break_it", "message"),
    [
        ("dim", r"Arson002_x264.npy: feature size 5, but .* has 6"),
        ("missing", r"test.list:2: listed feature file .*Explosion039_x264.npy"),
        ("nan", r"Abuse001_x264.npy: contains NaN"),
        ("rank", r"different ranks"),
    ],
)
def test_inconsistent_per_video_files_are_rejected_by_name(tmp_path, break_it, message):
    data = _write(tmp_path, "t_crop_d", 2)
    feats = tmp_path / "features"
    if break_it == "dim":
        np.save(feats / "Arson002_x264.npy", np.zeros((9, 2, DIM - 1), np.float32))
    elif break_it == "missing":
        (feats / "Explosion039_x264.npy").unlink()
    elif break_it == "nan":
        bad = np.load(feats / "Abuse001_x264.npy")
        bad[3, 1, 0] = np.nan
        np.save(feats / "Abuse001_x264.npy", bad)
    else:
        np.save(feats / "Arson002_x264.npy", np.zeros((9, DIM), np.float32))
    with pytest.raises(FeatureImportError, match=message):
        _run(tmp_path, data)
    assert not (tmp_path / "shard.parquet").exists()


def test_inconsistent_crop_files_are_rejected_by_name(tmp_path):
    data = _write(tmp_path, "crop_files", 3, list_kind="base")
    feats = tmp_path / "features"
    np.save(feats / "Arson002_x264__1.npy", np.zeros((8, DIM), np.float32))  # 9 segments in 0, 2
    with pytest.raises(
        FeatureImportError, match=r"Arson002_x264__1.npy: 8 segments, but crop file"
    ):
        _run(tmp_path, data)
    np.save(feats / "Arson002_x264__1.npy", _features("Arson002_x264", 3)[1])
    (feats / "Normal_Videos_003_x264__2.npy").unlink()
    with pytest.raises(FeatureImportError, match=r"Normal_Videos_003_x264__0.npy: crops \[0, 1\]"):
        _run(tmp_path, data)


def test_unknown_test_video_names_the_file(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    data = _write(tmp_path, "t_d", 1)
    feats = tmp_path / "features"
    np.save(feats / "Stealing019_x264.npy", np.zeros((4, DIM), np.float32))
    with open(data["features"]["test_list"], "a") as fh:
        fh.write("/elsewhere/Stealing019_x264.npy\n")
    with pytest.raises(FeatureImportError, match=r"Stealing019_x264.npy: test video .* is not in"):
        _run(tmp_path, data)


def test_rtfm_test_list_as_shipped_windows_paths_and_crlf(tmp_path):
    # Three lines of RTFM's list/ucf-i3d-test.list (tianyu0207/RTFM) as shipped: Windows
    # paths of the authors' drive, CRLF line ends.
    shipped = Path(__file__).parent / "fixtures" / "lists" / "rtfm-ucf-i3d-test.list"
    assert b"\r\n" in shipped.read_bytes() and b"G:\\" in shipped.read_bytes()
    data = _write(tmp_path, "t_crop_d", crops=10, suffix="_i3d")
    data["features"]["test_list"] = str(shipped)
    out = _run(tmp_path, data)
    index = pd.read_parquet(out["index"])
    assert sorted(index.loc[index.split == "test", "video_id"]) == sorted(TEST)
    meta, feats = read_shards([out["shard"]])
    assert set(meta["crop"]) == set(range(10))


@pytest.mark.parametrize("crop_zero", ["X.npy", "X__0.npy"])
def test_pel4vad_test_list_as_shipped(tmp_path, crop_zero):
    # PEL4VAD's list/ucf/test.list (yujiangpu20/PEL4VAD) names crop 0 `X.npy` and crops
    # 1-9 `X__1.npy` .. `X__9.npy`; the files on disk may be named either way for crop 0.
    shipped = Path(__file__).parent / "fixtures" / "lists" / "pel4vad-ucf-test.list"
    data = _write(tmp_path, "crop_files", crops=10, list_kind="base")
    feats = tmp_path / "features"
    (feats / "test").mkdir()
    for name in TEST:
        for c in range(10):
            target = f"{name}.npy" if c == 0 and crop_zero == "X.npy" else f"{name}__{c}.npy"
            (feats / f"{name}__{c}.npy").rename(feats / "test" / target)
    data["features"].update(test_list=str(shipped), root=str(feats))
    out = _run(tmp_path, data)
    meta, feats_ = read_shards([out["shard"]])
    explosion = meta[(meta.video_id == "Explosion039_x264") & (meta.segment == 2)]
    # crop c of video v holds base(v) + 100 c + segment (see _features)
    assert sorted(meta["crop"].unique()) == list(range(10))
    values = dict(zip(explosion["crop"], feats_[explosion.index.to_numpy(), 0], strict=True))
    base = sorted({**TRAIN, **TEST}).index("Explosion039_x264") * 1000
    assert values == {c: base + 100 * c + 2 for c in range(10)}


def test_gt_padding_conventions_by_hand():
    from synthvad.datasets.common import pad_intervals

    # A 37-frame mask anomalous from frame 30 to its end, features of 3 x 16 = 48 frames.
    assert pad_intervals([(5, 9), (30, 37)], 37, 48, "repeat_last") == [(5, 9), (30, 48)]
    assert pad_intervals([(5, 9), (30, 37)], 37, 48, "normal") == [(5, 9), (30, 37)]
    assert pad_intervals([(5, 9)], 37, 48, "repeat_last") == [(5, 9)]  # last label 0
    assert pad_intervals([(30, 37)], None, 48, "repeat_last") == [(30, 37)]  # no mask length


@pytest.mark.parametrize(("padding", "end"), [("repeat_last", 48), ("normal", 37)])
def test_shanghaitech_masks_pad_as_configured(tmp_path, padding, end):
    masks = tmp_path / "ann" / "test_frame_mask"
    masks.mkdir(parents=True)
    mask = np.zeros(37, np.int8)
    mask[30:] = 1  # anomalous up to the last annotated frame
    np.save(masks / "01_0055.npy", mask)
    feats = tmp_path / "features"
    feats.mkdir()
    for name, n_segments in (("01_0055", 3), ("01_001", 4)):
        np.save(feats / f"{name}.npy", np.ones((n_segments, DIM), np.float32))
    (tmp_path / "train.list").write_text("01_001.npy\n")
    (tmp_path / "test.list").write_text("01_0055.npy\n")
    data = {
        "kind": "shanghaitech",
        "annotations": str(tmp_path / "ann"),
        "features": {
            "extractor": "i3d", "train_list": str(tmp_path / "train.list"),
            "test_list": str(tmp_path / "test.list"), "root": str(feats), "layout": "auto",
            "name_suffix": "", "crops": None, "gt_padding": padding,
        },
    }  # fmt: skip
    out = _run(tmp_path, data)
    gt = pd.read_parquet(out["gt"])
    assert gt[["video_id", "start", "end"]].values.tolist() == [["01_0055", 30, end]]


def test_urdmu_lists_as_shipped(tmp_path):
    # Lines of UR-DMU's list/UCF_Train.list and UCF_Test.list (henrryzh1/UR-DMU): every
    # crop file listed, under per-class folders of a `dataset/` root.
    lists = Path(__file__).parent / "fixtures" / "lists"
    data = _write(tmp_path, "crop_files", crops=10, list_kind="base")
    feats = tmp_path / "features"
    for list_name in ("urdmu-UCF_Train.list", "urdmu-UCF_Test.list"):
        for line in (lists / list_name).read_text().split():
            target = tmp_path / line
            target.parent.mkdir(parents=True, exist_ok=True)
            (feats / Path(line).name).rename(target)
    data["features"].update(
        train_list=str(lists / "urdmu-UCF_Train.list"),
        test_list=str(lists / "urdmu-UCF_Test.list"),
        root=str(tmp_path),
    )
    out = _run(tmp_path, data)
    index = pd.read_parquet(out["index"])
    assert sorted(index["video_id"]) == sorted({**TRAIN, **TEST})
    assert set(read_shards([out["shard"]])[0]["crop"]) == set(range(10))


def test_gvvad_list_with_generated_clips_as_shipped(tmp_path):
    # Lines 1, 95, 1105, 1106, 1108, 1908 and 1909 of GV-VAD's list/GV/ucfg1-clip.list
    # (Sumutan/GV-VAD), in order: real abnormal videos, then generated clips, the first
    # real normal video, then more generated clips (its loader: abnormal ones come first).
    from synthvad.detect.data import load_videos, select_training

    shipped = Path(__file__).parent / "fixtures" / "lists" / "gvvad-ucfg1-clip.list"
    data = _write(tmp_path, "crop_t_d", crops=10, suffix="_clip")
    for clip in ("298", "299", "301", "302"):
        np.save(tmp_path / "features" / f"{clip}_clip.npy", np.full((10, 4, DIM), 7.0, np.float32))
    data["features"]["train_list"] = str(shipped)
    out = _run(tmp_path, data)
    index = pd.read_parquet(out["index"])
    assert sorted(index["video_id"]) == sorted({**TRAIN, **TEST})  # clips are not indexed
    videos = {v.video_id: v for v in load_videos([out["shard"]])}
    clips = {k: v for k, v in videos.items() if v.source == "synthetic"}
    folder = "descriptions_1_UCF_CLIP-B"
    assert {k: (v.label, v.method) for k, v in clips.items()} == {
        f"{folder}-298": (1, "imported"),
        f"{folder}-299": (1, "imported"),
        f"{folder}-301": (0, "imported"),
        f"{folder}-302": (0, "imported"),
    }
    experiment = {"name": "e", "real_abnormal": True, "synthetic": ["imported"]}
    chosen = {v.video_id for v in select_training(list(videos.values()), experiment)}
    assert set(clips) <= chosen
    # a generated clip in the test list is refused by line
    test_list = tmp_path / "test-with-clip.list"
    test_list.write_text(shipped.read_text().splitlines()[2] + "\n")
    data["features"]["test_list"] = str(test_list)
    with pytest.raises(FeatureImportError, match="test-with-clip.list:1.*test list"):
        _run(tmp_path, data)

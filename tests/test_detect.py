"""run_experiment end to end on tiny, easily separable synthetic shards."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from synthvad.detect.losses import topk_mean
from synthvad.detect.models import TopKMIL, build_detector
from synthvad.detect.train import load_videos, run_experiment, select_training
from synthvad.io.shards import write_shard
from synthvad.segments import segment_bounds

DIM = 8
LENGTH = 16
SEGMENT_CFG = {"length": LENGTH, "keep_last_partial": True}
DETECT_CFG = {"epochs": 40, "batch_size": 8, "hidden": 32, "dropout": 0.1, "lr": 3e-3}


def _video(rng, video_id, split, source, method, label, crops=2):
    """Rows and features of one video; abnormal segments inside its interval move along e0."""
    n_frames = int(rng.integers(6, 10)) * LENGTH + int(rng.integers(1, LENGTH))  # partial tail
    bounds = segment_bounds(n_frames, LENGTH, keep_last_partial=True)
    interval = None
    if label:
        first = int(rng.integers(1, len(bounds) - 3))
        interval = (bounds[first][0] + 3, bounds[first + 2][1])
    rows, feats = [], []
    for segment, (start, end) in enumerate(bounds):
        inside = interval is not None and start < interval[1] and end > interval[0]
        base = rng.normal(0.0, 0.3, DIM)
        base[0] += 2.0 if inside else 0.0
        for crop in range(crops):
            rows.append(
                {
                    "video_id": video_id,
                    "split": split,
                    "source": source,
                    "method": method,
                    "label": label,
                    "class": "Fighting" if label else "Normal",
                    "segment": segment,
                    "n_frames": end - start,
                    "crop": crop,
                }
            )
            feats.append(base + rng.normal(0.0, 0.05, DIM))
    return rows, feats, n_frames, interval


def make_dataset(tmp_path: Path, counts: dict | None = None) -> dict:
    """Shards, index.parquet and ground_truth.parquet; `counts` overrides videos per kind."""
    kinds = {
        ("train", "real", None, 0): 10,
        ("train", "real", None, 1): 10,
        ("train", "synthetic", "gvvad", 0): 4,
        ("train", "synthetic", "gvvad", 1): 6,
        ("train", "synthetic", "pavad", 1): 5,
        ("test", "real", None, 0): 4,
        ("test", "real", None, 1): 4,
    }
    kinds.update(counts or {})
    rng = np.random.default_rng(0)
    shard_rows: dict[str, tuple[list, list]] = {}
    index, gt = [], []
    for (split, source, method, label), n in kinds.items():
        for i in range(n):
            video_id = f"{source}_{method or 'x'}_{split}_{label}_{i:02d}"
            rows, feats, n_frames, interval = _video(rng, video_id, split, source, method, label)
            shard = f"{source}_{method or 'real'}"
            shard_rows.setdefault(shard, ([], []))
            shard_rows[shard][0].extend(rows)
            shard_rows[shard][1].extend(feats)
            if source == "real":
                index.append(
                    {
                        "video_id": video_id,
                        "path": f"videos/{video_id}.mp4",
                        "split": split,
                        "label": label,
                        "class": rows[0]["class"],
                        "n_frames": n_frames,
                        "fps": 30.0,
                        "width": 320,
                        "height": 240,
                        "scene": "street",
                    }
                )
                if interval is not None and split == "test":
                    gt.append({"video_id": video_id, "start": interval[0], "end": interval[1]})
    shards = []
    for name, (rows, feats) in sorted(shard_rows.items()):
        path = tmp_path / "features" / f"{name}.parquet"
        write_shard(pd.DataFrame(rows), np.array(feats), path)
        shards.append(str(path))
    index_path, gt_path = tmp_path / "index.parquet", tmp_path / "ground_truth.parquet"
    pd.DataFrame(index).to_parquet(index_path, index=False)
    pd.DataFrame(gt, columns=["video_id", "start", "end"]).to_parquet(gt_path, index=False)
    return {"shards": shards, "index": str(index_path), "gt": str(gt_path)}


def outputs(root: Path) -> dict[str, str]:
    return {
        "model": str(root / "model.safetensors"),
        "scores": str(root / "scores.parquet"),
        "metrics": str(root / "metrics.json"),
        "history": str(root / "history.csv"),
    }


BASELINE = {"name": "baseline", "real_abnormal": True, "synthetic": [], "alpha": 1.0}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"))


def run(data, root, experiment=BASELINE, seed=0, cfg=DETECT_CFG):
    return run_experiment(
        data["shards"], data["gt"], data["index"], experiment, cfg, SEGMENT_CFG, seed, outputs(root)
    )


def test_run_experiment_writes_outputs_and_separates(data, tmp_path):
    metrics = run(data, tmp_path)
    out = outputs(tmp_path)
    assert all(Path(p).is_file() for p in out.values())
    assert not list(tmp_path.glob(".*.part"))  # no temporary leftovers
    assert metrics["auc"] > 0.8
    assert json.loads(Path(out["metrics"]).read_text())["auc"] == pytest.approx(metrics["auc"])
    assert metrics["experiment"] == "baseline"
    assert 1 <= metrics["best_epoch"] <= DETECT_CFG["epochs"]
    assert metrics["val_metric"] == "video_auc"

    scores = pd.read_parquet(out["scores"])
    assert list(scores.columns) == ["video_id", "frame", "score", "label"]
    index = pd.read_parquet(data["index"]).set_index("video_id")
    per_video = scores.groupby("video_id").size()
    assert sorted(per_video.index) == sorted(index.index[index["split"] == "test"])
    # keep_last_partial: every frame of every test video is scored
    assert (per_video == index.loc[per_video.index, "n_frames"]).all()
    assert metrics["n_frames"] == len(scores)
    gt = pd.read_parquet(data["gt"])
    assert metrics["n_abnormal_frames"] == int((gt["end"] - gt["start"]).sum())

    history = pd.read_csv(out["history"])
    assert len(history) == DETECT_CFG["epochs"]
    assert {"epoch", "train_loss", "val_auc", "val_loss", "alpha"} <= set(history.columns)

    state = load_file(out["model"])
    model = TopKMIL(DIM, hidden=DETECT_CFG["hidden"])
    model.load_state_dict(state)  # the file is a loadable state dict


def test_same_seed_same_scores(data, tmp_path):
    run(data, tmp_path / "a", seed=3)
    run(data, tmp_path / "b", seed=3)
    a = pd.read_parquet(outputs(tmp_path / "a")["scores"])
    b = pd.read_parquet(outputs(tmp_path / "b")["scores"])
    pd.testing.assert_frame_equal(a, b)
    run(data, tmp_path / "c", seed=4)
    c = pd.read_parquet(outputs(tmp_path / "c")["scores"])
    assert not np.array_equal(a["score"].to_numpy(), c["score"].to_numpy())


def test_experiment_kinds_select_the_right_training_videos(data):
    videos = load_videos(data["shards"])

    def kinds(experiment):
        return sorted({(v.source, v.method, v.label) for v in select_training(videos, experiment)})

    assert kinds(BASELINE) == [("real", None, 0), ("real", None, 1)]
    synthetic_only = {"real_abnormal": False, "synthetic": ["gvvad"], "alpha": 0.5}
    assert kinds(synthetic_only) == [
        ("real", None, 0),
        ("synthetic", "gvvad", 0),
        ("synthetic", "gvvad", 1),
    ]
    mixed = {"real_abnormal": True, "synthetic": ["pavad"], "alpha": 0.5}
    assert kinds(mixed) == [("real", None, 0), ("real", None, 1), ("synthetic", "pavad", 1)]
    assert all(v.split == "train" for v in select_training(videos, mixed))


def test_synthetic_experiment_counts_and_learnable_alpha(data, tmp_path):
    experiment = {
        "name": "gv",
        "real_abnormal": False,
        "synthetic": ["gvvad"],
        "alpha": "learnable",
    }
    metrics = run(data, tmp_path, experiment, cfg={**DETECT_CFG, "epochs": 3})
    # train + val add up to the pool: 10 real normal, 4 + 6 gvvad, no real abnormal
    assert metrics["n_train_real_abnormal"] + metrics["n_val_real_abnormal"] == 0
    assert metrics["n_train_real_normal"] + metrics["n_val_real_normal"] == 10
    assert metrics["n_train_synthetic_normal"] + metrics["n_val_synthetic_normal"] == 4
    assert metrics["n_train_synthetic_abnormal"] + metrics["n_val_synthetic_abnormal"] == 6
    assert metrics["n_val"] > 0
    assert 0.0 < metrics["alpha_final"] < 1.0


def test_clear_errors_for_missing_classes_and_test_set(tmp_path):
    data = make_dataset(tmp_path)
    no_abnormal = {"name": "normal_only", "real_abnormal": False, "synthetic": [], "alpha": 1.0}
    with pytest.raises(ValueError, match="'normal_only'.*no abnormal videos"):
        run(data, tmp_path / "o1", no_abnormal)
    unknown = {"name": "typo", "real_abnormal": True, "synthetic": ["gvad"], "alpha": 1.0}
    with pytest.raises(ValueError, match="'typo'.*gvad"):
        run(data, tmp_path / "o2", unknown)

    no_normal = make_dataset(
        tmp_path / "nn", {("train", "real", None, 0): 0, ("train", "synthetic", "gvvad", 0): 0}
    )
    with pytest.raises(ValueError, match="'baseline'.*no normal videos"):
        run(no_normal, tmp_path / "o3")
    no_test = make_dataset(
        tmp_path / "nt", {("test", "real", None, 0): 0, ("test", "real", None, 1): 0}
    )
    with pytest.raises(ValueError, match="'baseline'.*test set is empty"):
        run(no_test, tmp_path / "o4")
    assert not (tmp_path / "o1").exists()  # nothing written on failure


def test_index_frame_count_mismatch_is_an_error(tmp_path):
    data = make_dataset(tmp_path)
    index = pd.read_parquet(data["index"])
    victim = index.loc[index["split"] == "test", "video_id"].iloc[0]
    index.loc[index["video_id"] == victim, "n_frames"] += LENGTH
    index.to_parquet(data["index"], index=False)
    with pytest.raises(ValueError, match=victim):
        run(data, tmp_path / "out", cfg={**DETECT_CFG, "epochs": 1})


def test_registry():
    model = build_detector("topk_mil", DIM, {"hidden": 16, "dropout": 0.0})
    x = torch.randn(2, 5, DIM)
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    scores = model(x, mask)
    assert scores.shape == (2, 5) and bool(((scores >= 0) & (scores <= 1)).all())
    assert scores[1, 2:].tolist() == [0.0, 0.0, 0.0]
    assert topk_mean(scores, mask, 3).shape == (2,)
    with pytest.raises(ValueError, match="topk_mil"):
        build_detector("nope", DIM, {})

"""Detectors on a small planted problem, SSLS and learnable alpha, seeds, crops, outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from synthvad.config import ConfigError, validate_config
from synthvad.detect.data import (
    TrainSet,
    Video,
    average_crops,
    load_videos,
    resample_segments,
    select_training,
    split_validation,
    spread_permutation,
)
from synthvad.detect.models import Objective, TopKBCE
from synthvad.detect.registry import build_detector
from synthvad.detect.train import (
    Alpha,
    load_detector,
    run_experiment,
    scaled_step_loss,
    seed_list,
)
from synthvad.io.shards import write_shard
from synthvad.segments import segment_bounds

from .conftest import ROOT

DIM = 16
LENGTH = 16
SEGMENT_CFG = {"length": LENGTH, "keep_last_partial": True}
PROTOCOL = {"seeds": 1, "val_fraction": 0.25, "train_segments": 64, "crops": "mean"}
RNG_BASIS = np.linalg.qr(np.random.default_rng(123).normal(size=(DIM, DIM)))[0]
NORMAL_BASIS = RNG_BASIS[:, :4]  # normal segments live near this 4-d subspace
ANOMALY_DIRECTIONS = RNG_BASIS[:, 4:7]  # one per anomaly class, orthogonal to it
SYNTHETIC_SHIFT = RNG_BASIS[:, 7]  # domain gap of synthetic clips

# Epochs: enough optimizer steps for each loss on this problem (the ranking hinge moves
# only through two segments per pair, so it needs the most).
SMALL = {"lr": 3e-3, "weight_decay": 1e-4, "batch_size": 4, "epochs": 30}
DETECTORS = {
    "topk_bce": {"model": "topk_bce", "hidden": 32, "dropout": 0.3, "topk": 2, **SMALL},
    "mil_ranking": {
        "model": "mil_ranking",
        "hidden": 32,
        "dropout": 0.3,
        "lambda_smooth": 8e-5,
        "lambda_sparse": 8e-5,
        **SMALL,
        "epochs": 100,
    },
    "urdmu": {
        "model": "urdmu",
        "embed_dim": 16,
        "heads": 2,
        "head_dim": 8,
        "layers": 1,
        "mlp_dim": 16,
        "dropout": 0.3,
        "classifier_hidden": 16,
        "memory_abnormal": 8,
        "memory_normal": 8,
        "lambda_memory": 0.1,
        "lambda_triplet": 0.1,
        "lambda_kl": 0.001,
        "lambda_distance": 0.0001,
        "triplet_margin": 1.0,
        "distance_margin": 100.0,
        "standardize": True,
        **SMALL,
        "lr": 1e-3,
        "epochs": 50,
    },
    "spr_unsupervised": {
        "model": "spr_unsupervised",
        "hidden": 32,
        "bottleneck": 4,
        "dropout": 0.0,
        "warmup_epochs": 5,
        "refine_every": 2,
        "drop_max": 0.2,
        "alarm_quantile": 0.95,
        "lr": 3e-3,
        "weight_decay": 0.0,
        "batch_size": 64,
        "epochs": 25,
    },
}
DARM = {
    **DETECTORS["urdmu"],
    "model": "darm",
    "lambda_1": 1.0,
    "lambda_2": 0.1,
    "lambda_da": 0.1,
    "lambda_dist": 0.01,
    "beta": 1.0,
    "tau": 0.1,
    "eps": 1e-3,
}
DETECTORS["darm"] = DARM
DETECTORS["lap"] = {
    "model": "lap",
    "head_hidden": [32, 8],
    "dropout": 0.3,
    "topk": 2,
    "standardize": True,
    **SMALL,
}


def _video(rng, video_id, split, source, method, label, crops):
    """Rows and features of one video: normal segments near a 4-d subspace, anomalous ones
    (inside the interval) pushed along their class direction, synthetic clips shifted."""
    n_frames = int(rng.integers(8, 13)) * LENGTH + int(rng.integers(1, LENGTH))  # partial tail
    bounds = segment_bounds(n_frames, LENGTH, keep_last_partial=True)
    interval = None
    if label:
        first = int(rng.integers(1, len(bounds) - 3))
        interval = (bounds[first][0] + 3, bounds[first + 2][1])
    direction = ANOMALY_DIRECTIONS[:, int(rng.integers(0, 3))]
    rows, feats = [], []
    for segment, (start, end) in enumerate(bounds):
        inside = interval is not None and start < interval[1] and end > interval[0]
        base = NORMAL_BASIS @ rng.normal(0.0, 2.0, 4) + rng.normal(0.0, 0.1, DIM)
        base += 3.0 * direction * inside + 1.5 * SYNTHETIC_SHIFT * (source == "synthetic")
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


def make_dataset(tmp_path: Path, counts: dict | None = None, crops: int = 2) -> dict:
    """Shards, index.parquet and ground_truth.parquet; `counts` overrides videos per kind."""
    kinds = {
        ("train", "real", None, 0): 24,
        ("train", "real", None, 1): 24,
        ("train", "synthetic", "gvvad", 0): 6,
        ("train", "synthetic", "gvvad", 1): 8,
        ("train", "synthetic", "pavad", 0): 8,
        ("train", "synthetic", "pavad", 1): 20,
        ("test", "real", None, 0): 5,
        ("test", "real", None, 1): 5,
    }
    kinds.update(counts or {})
    rng = np.random.default_rng(0)
    shard_rows: dict[str, tuple[list, list]] = {}
    index, gt = [], []
    for (split, source, method, label), n in kinds.items():
        for i in range(n):
            video_id = f"{source}_{method or 'x'}_{split}_{label}_{i:02d}"
            rows, feats, n_frames, interval = _video(
                rng, video_id, split, source, method, label, crops
            )
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


def run(data, root, experiment=BASELINE, detector="topk_bce", seed=0, protocol=None, cfg=None):
    cfg = cfg or DETECTORS[detector]
    bank = None
    if cfg["model"] == "lap":  # the class-text bank: one direction per planted class
        bank = str(Path(root) / "bank.npy")
        Path(root).mkdir(parents=True, exist_ok=True)
        np.save(bank, ANOMALY_DIRECTIONS.T.astype(np.float32))
    return run_experiment(
        data["shards"],
        data["gt"],
        data["index"],
        experiment,
        cfg,
        {**PROTOCOL, **(protocol or {})},
        SEGMENT_CFG,
        seed,
        outputs(root),
        threads=1,
        text_bank_path=bank,
    )


PLANTED = [
    ("topk_bce", {"real_abnormal": True, "synthetic": []}),
    ("mil_ranking", {"real_abnormal": True, "synthetic": []}),
    ("urdmu", {"real_abnormal": False, "synthetic": ["pavad"], "alpha": 1.0}),
    ("darm", {"real_abnormal": False, "synthetic": ["pavad"], "alpha": 1.0}),
    ("lap", {"real_abnormal": True, "synthetic": ["gvvad"], "alpha": 0.5}),
    # Labels removed: every real training video, anomalies included, no label anywhere.
    ("spr_unsupervised", {"real_abnormal": True, "synthetic": [], "unsupervised": True}),
]


@pytest.mark.parametrize(("detector", "selection"), PLANTED, ids=[p[0] for p in PLANTED])
def test_each_detector_finds_the_planted_anomalies(data, tmp_path, detector, selection):
    experiment = {"name": f"planted_{detector}", "detector": detector, **selection}
    # These videos have 8-13 segments: stretched to 64, LAP's top-k by feature magnitude
    # picks copies of few segments (seeds 0-1: 0.72 and 0.51 at 64; 0.99 and 0.93 at 16).
    protocol = {"train_segments": 16} if detector == "lap" else None
    metrics = run(data, tmp_path, experiment, detector, protocol=protocol)
    # chance is 0.5 (AP: the anomalous frame share, about 0.1); measured over seeds 0-2:
    # MLP heads and the autoencoder 0.99, urdmu 0.79-0.95, darm 0.79-0.95, lap 0.93-0.99
    assert metrics["auc"] > 0.75, metrics
    assert metrics["ap"] > 0.3, metrics
    assert metrics["model"] == DETECTORS[detector]["model"]


def test_run_writes_outputs_with_per_seed_metrics_and_spread(data, tmp_path):
    # an experiment's own `seeds` overrides the protocol's; seeds count up from the base seed
    assert seed_list({"seeds": 2}, {"seeds": 3}, 5) == [5, 6]
    assert seed_list({}, {"seeds": 3}, 0) == [0, 1, 2]
    metrics = run(data, tmp_path, protocol={"seeds": 2})
    out = outputs(tmp_path)
    assert all(Path(p).is_file() for p in out.values())
    assert not list(tmp_path.glob(".*.part"))  # no temporary leftovers
    saved = json.loads(Path(out["metrics"]).read_text())
    assert saved["seeds"] == [0, 1] and len(saved["per_seed"]) == 2
    aucs = [m["auc"] for m in saved["per_seed"]]
    assert saved["auc"] == pytest.approx(np.mean(aucs))
    assert saved["auc_std"] == pytest.approx(np.std(aucs, ddof=1))
    assert saved["val_metric"] == "objective"
    assert all(1 <= e <= SMALL["epochs"] for e in saved["best_epochs"])

    scores = pd.read_parquet(out["scores"])
    assert list(scores.columns) == ["seed", "video_id", "frame", "score", "label"]
    index = pd.read_parquet(data["index"]).set_index("video_id")
    per_video = scores[scores.seed == 0].groupby("video_id").size()
    assert sorted(per_video.index) == sorted(index.index[index["split"] == "test"])
    # keep_last_partial: every frame of every test video is scored
    assert (per_video == index.loc[per_video.index, "n_frames"]).all()
    assert metrics["n_frames"] == len(scores) // 2
    gt = pd.read_parquet(data["gt"])
    assert metrics["n_abnormal_frames"] == int((gt["end"] - gt["start"]).sum())

    history = pd.read_csv(out["history"])
    assert len(history) == 2 * SMALL["epochs"]
    assert {"seed", "epoch", "loss", "val_auc", "val_loss", "alpha"} <= set(history.columns)

    # The saved weights of each seed reproduce that seed's test scores.
    model = load_detector(out["model"], seed=1)
    video = load_videos(data["shards"])
    first_test = next(v for v in average_crops(video) if v.split == "test")
    x = torch.from_numpy(first_test.features)
    again = model(x, torch.ones(x.shape[:2], dtype=torch.bool))[0].detach().numpy()
    saved_frames = scores[(scores.seed == 1) & (scores.video_id == first_test.video_id)]
    assert saved_frames["score"].iloc[0] == pytest.approx(float(again[0]), abs=1e-6)


def test_same_seed_same_scores_other_seed_differs(data, tmp_path):
    experiment = {"name": "gv", "real_abnormal": True, "synthetic": ["gvvad"], "alpha": 0.5}
    cfg = {**DETECTORS["topk_bce"], "epochs": 6}
    run(data, tmp_path / "a", experiment, seed=3, cfg=cfg)
    run(data, tmp_path / "b", experiment, seed=3, cfg=cfg)
    a = pd.read_parquet(outputs(tmp_path / "a")["scores"])
    b = pd.read_parquet(outputs(tmp_path / "b")["scores"])
    pd.testing.assert_frame_equal(a, b)
    run(data, tmp_path / "c", experiment, seed=4, cfg=cfg)
    c = pd.read_parquet(outputs(tmp_path / "c")["scores"])
    assert not np.array_equal(a["score"].to_numpy(), c["score"].to_numpy())


def test_crops_augment_trains_on_single_crops_and_tests_on_their_mean(data, tmp_path):
    videos = load_videos(data["shards"])
    assert videos[0].features.shape[0] == 2  # the fixture writes two crops
    train = [v for v in videos if v.split == "train"][:3]
    trainset = TrainSet(train, segments=64, labelled=True)
    gen = torch.Generator().manual_seed(0)
    batch = trainset.batch(torch.tensor([0, 1, 2, 0, 1, 2]), gen)
    # each sample is exactly one of its video's crops, not their mean
    for row, i in zip(batch.x, [0, 1, 2, 0, 1, 2], strict=True):
        length = train[i].features.shape[1]
        assert any(torch.allclose(row[:length], torch.from_numpy(c)) for c in train[i].features)
    metrics = run(data, tmp_path, protocol={"crops": "augment"})
    assert metrics["auc"] > 0.8


def test_ssls_alpha_one_is_unscaled_and_zero_ignores_synthetic_in_both_labels():
    per_sample = torch.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    # synthetic: one normal (index 1) and one abnormal (index 3) sample
    objective = Objective(per_sample, torch.tensor([0, 1, 0, 1]), torch.zeros(()))
    loss_one, _ = scaled_step_loss(objective, Alpha(1.0, 0.5))
    assert loss_one.item() == pytest.approx(per_sample.mean().item())  # Eq. 7 unscaled
    loss_zero, _ = scaled_step_loss(objective, Alpha(0.0, 0.5))
    loss_zero.backward()
    assert per_sample.grad.tolist() == [0.25, 0.0, 0.25, 0.0]


def test_ssls_alpha_zero_trains_like_the_real_videos_alone():
    torch.manual_seed(0)
    model = TopKBCE(DIM, {"hidden": 8, "dropout": 0.0, "topk": 2})
    videos = [
        Video(f"v{i}", "train", src, None, lab, np.random.default_rng(i).normal(size=(1, 5, DIM)).astype(np.float32), np.full(5, 16))
        for i, (src, lab) in enumerate(
            [("real", 0), ("synthetic", 0), ("real", 1), ("synthetic", 1)]
        )
    ]  # fmt: skip
    both = TrainSet(videos, 64, labelled=True)
    real = TrainSet([videos[0], videos[2]], 64, labelled=True)

    def grads(trainset, alpha):
        model.zero_grad()
        batch = trainset.batch(torch.arange(len(trainset)), None)
        scaled_step_loss(model.objective(batch), Alpha(alpha, 0.5))[0].backward()
        return [p.grad.clone() for p in model.parameters()]

    # alpha 0 on all four = real pair alone, times 2 / 4 (Eq. 7 divides by the batch size)
    for g_all, g_real in zip(grads(both, 0.0), grads(real, 1.0), strict=True):
        torch.testing.assert_close(g_all, g_real * 0.5)


def test_learnable_alpha_settles_at_the_loss_ratio_instead_of_zero():
    alpha = Alpha("learnable", 0.5)
    optimizer = torch.optim.Adam(alpha.parameters(), lr=0.05)
    # real samples' loss 1, synthetic 4 (both constant): the objective's minimum is 1 / 4
    per_sample = torch.tensor([1.0, 1.0, 4.0, 4.0])
    objective = Objective(per_sample, torch.tensor([0, 0, 1, 1]), torch.zeros(()))
    for _ in range(400):
        loss, _ = scaled_step_loss(objective, alpha)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert alpha.value() == pytest.approx(0.25, abs=0.02)


def test_learnable_alpha_run_reports_its_final_value(data, tmp_path):
    experiment = {"name": "gv", "real_abnormal": True, "synthetic": ["gvvad"], "alpha": "learnable"}
    metrics = run(data, tmp_path, experiment, cfg={**DETECTORS["topk_bce"], "epochs": 5})
    assert 0.0 < metrics["alpha_final"] < 1.0
    history = pd.read_csv(outputs(tmp_path)["history"])
    assert history["alpha"].nunique() > 1  # it is trained


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
    assert kinds(mixed) == [
        ("real", None, 0),
        ("real", None, 1),
        ("synthetic", "pavad", 0),
        ("synthetic", "pavad", 1),
    ]
    assert all(v.split == "train" for v in select_training(videos, mixed))


def test_unsupervised_split_ignores_labels(data):
    videos = [v for v in load_videos(data["shards"]) if v.split == "train" and v.source == "real"]
    # labelled: round(0.25 * 24) = 6 per label; label-free: one stratum, 12 of 48
    for by_label in (True, False):
        train, val = split_validation(videos, 0.25, seed=0, by_label=by_label)
        assert len(train) + len(val) == len(videos) and len(val) == 12
    # without labels the split must not depend on them
    flipped = [Video(**{**v.__dict__, "label": 1 - v.label}) for v in videos]
    a = split_validation(videos, 0.25, seed=0, by_label=False)[1]
    b = split_validation(flipped, 0.25, seed=0, by_label=False)[1]
    assert [v.video_id for v in a] == [v.video_id for v in b]


def test_clear_errors_for_missing_classes_test_set_and_label_free_misuse(tmp_path):
    data = make_dataset(tmp_path)
    no_abnormal = {"name": "normal_only", "real_abnormal": False, "synthetic": [], "alpha": 1.0}
    with pytest.raises(ValueError, match="'normal_only'.*no abnormal videos"):
        run(data, tmp_path / "o1", no_abnormal)
    unknown = {"name": "typo", "real_abnormal": True, "synthetic": ["gvad"], "alpha": 1.0}
    with pytest.raises(ValueError, match="'typo'.*gvad"):
        run(data, tmp_path / "o2", unknown)
    weak_without_labels = {**BASELINE, "name": "nolabels", "unsupervised": True}
    with pytest.raises(ValueError, match="'nolabels'.*spr_unsupervised"):
        run(data, tmp_path / "o3", weak_without_labels)

    no_normal = make_dataset(
        tmp_path / "nn", {("train", "real", None, 0): 0, ("train", "synthetic", "gvvad", 0): 0}
    )
    with pytest.raises(ValueError, match="'baseline'.*no normal videos"):
        run(no_normal, tmp_path / "o4")
    no_test = make_dataset(
        tmp_path / "nt", {("test", "real", None, 0): 0, ("test", "real", None, 1): 0}
    )
    with pytest.raises(ValueError, match="'baseline'.*test set is empty"):
        run(no_test, tmp_path / "o5")
    assert not (tmp_path / "o1").exists()  # nothing written on failure


def test_index_frame_count_mismatch_is_an_error(tmp_path):
    data = make_dataset(tmp_path)
    index = pd.read_parquet(data["index"])
    victim = index.loc[index["split"] == "test", "video_id"].iloc[0]
    index.loc[index["video_id"] == victim, "n_frames"] += LENGTH
    index.to_parquet(data["index"], index=False)
    with pytest.raises(ValueError, match=victim):
        run(data, tmp_path / "out", cfg={**DETECTORS["topk_bce"], "epochs": 1})


@pytest.mark.parametrize(
    "model", ["topk_bce", "mil_ranking", "lap", "urdmu", "darm", "spr_unsupervised"]
)
def test_registry_scores_are_probabilities_and_padding_scores_zero(model):
    detector = build_detector(model, DIM, DETECTORS[model])
    x = torch.randn(2, 5, DIM)
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    scores = detector.eval()(x, mask)
    assert scores.shape == (2, 5) and bool(((scores >= 0) & (scores <= 1)).all())
    assert scores[1, 2:].tolist() == [0.0, 0.0, 0.0]
    # a padded batch scores a video as it scores alone
    alone = detector(x[1:, :2], mask[1:, :2])
    torch.testing.assert_close(scores[1:, :2], alone, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="topk_bce"):
        build_detector("nope", DIM, {})


def test_resample_segments_averages_chunks():
    features = np.arange(10, dtype=np.float32).reshape(1, 5, 2)  # rows [0,1], [2,3], ...
    # 5 segments -> 2: linspace bounds 0, 2(.5 -> 2), 5: means of rows 0-1 and 2-4
    got = resample_segments(features, 2)
    np.testing.assert_allclose(got[0], [[1.0, 2.0], [6.0, 7.0]])
    assert resample_segments(features, 8) is features


def test_spread_permutation_interleaves_groups():
    groups = np.array(["real"] * 12 + ["synthetic"] * 4)
    order = spread_permutation(groups, np.random.default_rng(0))
    assert sorted(order.tolist()) == list(range(16))
    # every window of 4 holds exactly one synthetic video (its share: 4 of 16)
    for start in range(0, 16, 4):
        assert (groups[order[start : start + 4]] == "synthetic").sum() == 1


def _config_with(experiments: dict, detectors: dict | None = None) -> dict:
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    cfg["experiments"] = experiments
    if detectors is not None:
        cfg["detectors"] = detectors
    return cfg


def test_config_detectors_get_paper_defaults_and_experiments_must_name_one():
    cfg = validate_config(_config_with({"e": {"detector": "d"}}, {"d": {"model": "darm"}}))
    darm = cfg["detectors"]["d"]
    # PA-VAD Table 8, UCF-Crime column
    assert (darm["memory_abnormal"], darm["memory_normal"], darm["batch_size"]) == (60, 60, 4)
    assert (darm["lambda_1"], darm["lambda_2"], darm["lambda_da"]) == (1.0, 0.1, 0.1)
    assert (darm["lambda_dist"], darm["beta"], darm["lr"]) == (0.01, 1.0, 1e-5)
    assert cfg["experiments"]["e"]["alpha"] == 0.5  # GV-VAD's default
    with pytest.raises(ConfigError, match="'experiments.e.detector'.*'nope'"):
        validate_config(_config_with({"e": {"detector": "nope"}}))
    with pytest.raises(ConfigError, match="'experiments.e.unsupervised'"):
        validate_config(_config_with({"e": {"detector": "topk_bce", "unsupervised": True}}))
    # a key of another model is named, not silently ignored
    with pytest.raises(ConfigError, match="'detectors.d'.*lambda_1"):
        validate_config(
            _config_with({"e": {"detector": "d"}}, {"d": {"model": "urdmu", "lambda_1": 1}})
        )
    with pytest.raises(ConfigError, match="'detectors.d.lambda_2'"):
        validate_config(
            _config_with({"e": {"detector": "d"}}, {"d": {"model": "darm", "lambda_2": -1}})
        )


def test_default_config_runs_every_detector_and_the_papers_experiments():
    cfg = validate_config(yaml.safe_load((ROOT / "config.yaml").read_text()))
    models = {cfg["detectors"][e["detector"]]["model"] for e in cfg["experiments"].values()}
    assert models == {"mil_ranking", "topk_bce", "lap", "urdmu", "darm", "spr_unsupervised"}
    alphas = {e["alpha"] for e in cfg["experiments"].values() if e["synthetic"] == ["gvvad"]}
    assert alphas == {0.5, 1.0, "learnable"}
    test_cfg = validate_config(yaml.safe_load((ROOT / ".test" / "config.yaml").read_text()))
    test_models = {
        test_cfg["detectors"][e["detector"]]["model"] for e in test_cfg["experiments"].values()
    }
    assert test_models == models


def test_identical_runs_write_identical_files(data, tmp_path):
    for name in ("a", "b"):
        run(data, tmp_path / name)
    for key, path in outputs(tmp_path / "a").items():
        other = outputs(tmp_path / "b")[key]
        assert Path(path).read_bytes() == Path(other).read_bytes(), key


def test_lap_bank_of_other_dims_is_named(data, tmp_path):
    bank = tmp_path / "bank.npy"
    np.save(bank, np.ones((3, DIM // 2), np.float32))
    experiment = {"name": "lap", "real_abnormal": True, "synthetic": [], "alpha": 1.0}
    with pytest.raises(ValueError, match="class-text bank has 8 dims but the visual features"):
        run_experiment(
            data["shards"], data["gt"], data["index"], experiment,
            {**DETECTORS["lap"], "epochs": 1}, PROTOCOL, SEGMENT_CFG, 0,
            outputs(tmp_path), threads=1, text_bank_path=str(bank),
        )  # fmt: skip
    with pytest.raises(ValueError, match="need the class-text bank"):
        run_experiment(
            data["shards"], data["gt"], data["index"], experiment,
            {**DETECTORS["lap"], "epochs": 1}, PROTOCOL, SEGMENT_CFG, 0, outputs(tmp_path),
        )  # fmt: skip


def test_feature_store_gives_the_in_memory_videos_batches_and_scores(data, tmp_path):
    from synthvad.detect.data import TrainSet, average_crops, load_videos
    from synthvad.detect.store import StoredFeatures, build_store

    stores = []
    for i, shard in enumerate(data["shards"]):
        stores.append(str(tmp_path / f"store{i}"))
        build_store([shard], stores[-1])
    in_memory, stored = load_videos(data["shards"]), load_videos(stores)
    assert [v.video_id for v in stored] == [v.video_id for v in in_memory]
    for a, b in zip(in_memory, stored, strict=True):
        assert isinstance(b.features, StoredFeatures) and b.features.shape == a.features.shape
        assert (a.split, a.source, a.method, a.label, a.cls) == (
            b.split,
            b.source,
            b.method,
            b.label,
            b.cls,
        )  # noqa: E501
        np.testing.assert_array_equal(np.asarray(b.features), a.features)
        np.testing.assert_array_equal(b.segment_frames, a.segment_frames)
    for exact in (False, True):
        a = TrainSet(average_crops(in_memory), 16, labelled=True, exact_length=exact)
        b = TrainSet(average_crops(stored), 16, labelled=True, exact_length=exact)
        index = torch.tensor([0, 5, 9, 3])
        assert torch.equal(a.batch(index, None).x, b.batch(index, None).x)
        assert torch.equal(a.mask, b.mask)
    # the whole experiment, from stores: the same scores and metrics
    experiment = {"name": "store", "real_abnormal": True, "synthetic": ["gvvad"], "alpha": 0.5}
    run(data, tmp_path / "memory", experiment)
    run({**data, "shards": stores}, tmp_path / "stored", experiment)
    for key in ("scores", "metrics"):
        assert (
            Path(outputs(tmp_path / "memory")[key]).read_bytes()
            == Path(outputs(tmp_path / "stored")[key]).read_bytes()
        ), key


def test_feature_store_float16_and_checks(data, tmp_path):
    from synthvad.detect.data import load_videos
    from synthvad.detect.store import build_store

    build_store(data["shards"], str(tmp_path / "half"), dtype="float16")
    half = {v.video_id: np.asarray(v.features) for v in load_videos([str(tmp_path / "half")])}
    full = {v.video_id: v.features for v in load_videos(data["shards"])}
    for video_id, features in full.items():
        np.testing.assert_allclose(half[video_id], features, rtol=1e-3, atol=1e-3)
    with pytest.raises(ValueError, match="dtype"):
        build_store(data["shards"], str(tmp_path / "x"), dtype="int8")
    with pytest.raises(ValueError, match="two shards"):
        build_store([data["shards"][0], data["shards"][0]], str(tmp_path / "twice"))
    assert not (tmp_path / "twice").exists()  # nothing half-written
    with pytest.raises(ValueError, match="not both"):
        load_videos([str(tmp_path / "half"), data["shards"][0]])
    truncated = tmp_path / "half" / "features.npy"
    truncated.write_bytes(truncated.read_bytes()[:-2])
    with pytest.raises(ValueError, match="bytes, expected"):
        load_videos([str(tmp_path / "half")])


def test_segment_moments_are_the_valid_rows_mean_and_std():
    from synthvad.detect.data import TrainSet, Video

    rng = np.random.default_rng(0)
    videos = [
        Video(
            f"v{i}",
            "train",
            "real",
            None,
            i % 2,
            rng.normal(i, 1 + i, (c, t, 3)).astype(np.float32),
            np.full(t, 16),
        )  # noqa: E501
        for i, (c, t) in enumerate([(2, 5), (1, 3), (2, 7)])
    ]
    trainset = TrainSet(videos, 6, labelled=True)  # the 7-segment video averages down to 6
    rows = np.concatenate(
        [
            np.asarray(trainset.features[i, :c, :t]).reshape(-1, 3)
            for i, (c, t) in enumerate([(2, 5), (1, 3), (2, 6)])
        ]  # noqa: E501
    )
    mean, std = trainset.segment_moments(chunk=2)
    np.testing.assert_allclose(mean.numpy(), rows.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(std.numpy(), rows.std(axis=0, ddof=1), rtol=1e-5)

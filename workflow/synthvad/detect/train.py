"""Train one detector for one experiment, select its epoch on validation, score the test set."""

from __future__ import annotations

import copy
import json
import logging
import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from safetensors.torch import save_file
from torch import Tensor, nn
from tqdm import tqdm

from synthvad.detect import losses
from synthvad.detect.models import build_detector
from synthvad.io.atomic import atomic_path, write_json, write_parquet, write_text
from synthvad.io.shards import read_shards
from synthvad.metrics import align_scores_to_ground_truth, frame_metrics, video_auc
from synthvad.segments import read_intervals

log = logging.getLogger(__name__)

DETECT_DEFAULTS: dict = {
    "model": "topk_mil",
    "hidden": 128,
    "dropout": 0.3,
    "lr": 1e-3,
    "weight_decay": 5e-3,
    "epochs": 60,
    "batch_size": 16,
    "topk": 3,
    "val_fraction": 0.2,
    "smoothness": 0.0,
    "sparsity": 0.0,
    "alpha_init": 0.5,  # starting value when the experiment's alpha is "learnable"
}

VIDEO_COLUMNS = ("split", "source", "method", "label")


@dataclass(frozen=True)
class Video:
    """One video's crop-averaged segment features and what the shards say about it."""

    video_id: str
    split: str
    source: str
    method: str | None
    label: int
    features: np.ndarray  # float32 [T, D]
    segment_frames: np.ndarray  # int64 [T], frames each segment covers


def experiment_name(experiment: dict) -> str:
    return str(experiment.get("name", "<unnamed experiment>"))


def load_videos(shard_paths: list[str]) -> list[Video]:
    """Read shards and average each segment's features over its crops, sorted by video id."""
    meta, feats = read_shards(shard_paths)
    meta = meta.reset_index(drop=True)
    bad_source = set(meta["source"].unique()) - {"real", "synthetic"}
    if bad_source:
        raise ValueError(f"unknown source values in feature shards: {sorted(bad_source)}")
    per_video = meta.groupby("video_id")[list(VIDEO_COLUMNS)].nunique(dropna=False)
    inconsistent = per_video.index[(per_video > 1).any(axis=1)]
    if len(inconsistent):
        raise ValueError(f"video {inconsistent[0]!r} has rows that disagree on {VIDEO_COLUMNS}")

    order = meta.sort_values(["video_id", "segment", "crop"], kind="stable").index.to_numpy()
    meta = meta.iloc[order].reset_index(drop=True)
    feats = feats[order]
    vid = meta["video_id"].to_numpy()
    seg = meta["segment"].to_numpy()
    new_group = np.ones(len(meta), dtype=bool)
    new_group[1:] = (vid[1:] != vid[:-1]) | (seg[1:] != seg[:-1])
    starts = np.flatnonzero(new_group)
    n_crops = np.diff(np.append(starts, len(meta)))
    mean = np.add.reduceat(feats.astype(np.float64), starts, axis=0) / n_crops[:, None]
    frames = meta["n_frames"].to_numpy()
    if np.any(np.minimum.reduceat(frames, starts) != np.maximum.reduceat(frames, starts)):
        raise ValueError("crops of one segment disagree on the segment's n_frames")
    groups = meta.iloc[starts].reset_index(drop=True)

    videos = []
    for video_id, rows in sorted(groups.groupby("video_id").indices.items()):
        first = groups.iloc[rows[0]]
        if not np.array_equal(groups["segment"].to_numpy()[rows], np.arange(len(rows))):
            raise ValueError(f"video {video_id!r}: segments are not numbered 0..{len(rows) - 1}")
        # Averaging crops is only fair when every segment has the same crops.
        if len(set(n_crops[rows])) > 1:
            raise ValueError(f"video {video_id!r}: segments have different numbers of crops")
        method = first["method"]
        videos.append(
            Video(
                video_id=str(video_id),
                split=str(first["split"]),
                source=str(first["source"]),
                method=None if pd.isna(method) else str(method),
                label=int(first["label"]),
                features=mean[rows].astype(np.float32),
                segment_frames=frames[starts[rows]].astype(np.int64),
            )
        )
    return videos


def select_training(videos: list[Video], experiment: dict) -> list[Video]:
    """Real train normal videos, real train abnormal ones if asked, chosen synthetic ones."""
    name = experiment_name(experiment)
    methods = list(experiment.get("synthetic", []))
    real_abnormal = bool(experiment["real_abnormal"])
    available = {v.method for v in videos if v.source == "synthetic"}
    unknown = sorted(set(methods) - available)
    if unknown:
        raise ValueError(
            f"experiment {name!r}: no synthetic videos of method(s) {unknown} in the feature "
            f"shards (available: {sorted(m for m in available if m is not None)})"
        )
    chosen = [
        v
        for v in videos
        if v.split == "train"
        and (
            (v.source == "real" and (v.label == 0 or real_abnormal))
            or (v.source == "synthetic" and v.method in methods)
        )
    ]
    for label, word in ((0, "normal"), (1, "abnormal")):
        if not any(v.label == label for v in chosen):
            raise ValueError(
                f"experiment {name!r}: the training set has no {word} videos "
                f"(real_abnormal={real_abnormal}, synthetic={methods})"
            )
    return chosen


def select_test(videos: list[Video], experiment: dict) -> list[Video]:
    """Real videos of the test split; synthetic videos are never tested on."""
    test = [v for v in videos if v.source == "real" and v.split == "test"]
    if not test:
        raise ValueError(f"experiment {experiment_name(experiment)!r}: the test set is empty")
    return test


def split_validation(
    videos: list[Video], fraction: float, seed: int
) -> tuple[list[Video], list[Video]]:
    """Seeded (train, val) split of training videos, stratified by (source, label).

    Each stratum keeps at least one video for training, so training keeps both labels.
    """
    rng = np.random.default_rng(seed)
    strata: dict[tuple[str, int], list[int]] = {}
    for i, v in enumerate(videos):
        strata.setdefault((v.source, v.label), []).append(i)
    val_idx: set[int] = set()
    for key in sorted(strata):
        members = strata[key]
        n_val = min(len(members) - 1, round(fraction * len(members)))
        val_idx.update(members[j] for j in rng.permutation(len(members))[:n_val])
    train = [v for i, v in enumerate(videos) if i not in val_idx]
    val = [v for i, v in enumerate(videos) if i in val_idx]
    return train, val


def count_videos(videos: list[Video]) -> dict[str, int]:
    counts = Counter(f"{v.source}_{'abnormal' if v.label else 'normal'}" for v in videos)
    return {
        f"{source}_{word}": counts.get(f"{source}_{word}", 0)
        for source in ("real", "synthetic")
        for word in ("normal", "abnormal")
    }


def _batch(videos: list[Video]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Pad to the longest video of the batch: features [B,T,D], mask, labels, is_synthetic."""
    longest = max(len(v.features) for v in videos)
    dim = videos[0].features.shape[1]
    x = torch.zeros(len(videos), longest, dim)
    mask = torch.zeros(len(videos), longest, dtype=torch.bool)
    for i, v in enumerate(videos):
        x[i, : len(v.features)] = torch.from_numpy(v.features)
        mask[i, : len(v.features)] = True
    labels = torch.tensor([v.label for v in videos], dtype=torch.float32)
    is_synthetic = torch.tensor([v.source == "synthetic" for v in videos])
    return x, mask, labels, is_synthetic


def _per_sample_loss(model: nn.Module, videos: list[Video], cfg: dict) -> tuple[Tensor, Tensor]:
    """Unscaled per-sample objective (Eq. 8 + Sultani terms on abnormal videos), is_synthetic."""
    x, mask, labels, is_synthetic = _batch(videos)
    scores = model(x, mask)
    loss = losses.topk_bce(losses.topk_mean(scores, mask, int(cfg["topk"])), labels)
    # Sultani et al. regularise abnormal bags only: normal videos are normal throughout.
    if cfg["smoothness"]:
        loss = loss + float(cfg["smoothness"]) * labels * losses.smoothness(scores, mask)
    if cfg["sparsity"]:
        loss = loss + float(cfg["sparsity"]) * labels * losses.sparsity(scores, mask)
    return loss, is_synthetic


class _Alpha(nn.Module):
    """SSLS factor: fixed, or learnable as sigmoid(theta) so it stays in (0, 1)."""

    def __init__(self, alpha: float | str, init: float) -> None:
        super().__init__()
        self.learnable = alpha == "learnable"
        if self.learnable:
            if not 0.0 < init < 1.0:
                raise ValueError(f"alpha_init must be in (0, 1), got {init}")
            self.theta = nn.Parameter(torch.tensor(math.log(init / (1.0 - init))))
            self.fixed = 0.0
        else:
            if isinstance(alpha, str) or float(alpha) < 0:
                raise ValueError(
                    f"alpha must be a non-negative number or 'learnable', got {alpha!r}"
                )
            self.fixed = float(alpha)

    def forward(self) -> Tensor | float:
        return torch.sigmoid(self.theta) if self.learnable else self.fixed

    def value(self) -> float:
        return float(torch.as_tensor(self.forward()).detach())


@torch.no_grad()
def _validate(model: nn.Module, val: list[Video], cfg: dict) -> tuple[float | None, float | None]:
    """Video-level AUC and mean unscaled loss on validation videos (None without any)."""
    if not val:
        return None, None
    model.eval()
    scores, labels = [], []
    # Batches bound the padded size: one batch of all videos can be gigabytes.
    for start in range(0, len(val), int(cfg["batch_size"])):
        x, mask, y, _ = _batch(val[start : start + int(cfg["batch_size"])])
        scores.append(losses.topk_mean(model(x, mask), mask, int(cfg["topk"])))
        labels.append(y)
    video_scores, video_labels = torch.cat(scores), torch.cat(labels)
    loss = float(losses.topk_bce(video_scores, video_labels).mean())
    return video_auc(video_scores.numpy(), video_labels.numpy()), loss


def _fit(
    train: list[Video],
    val: list[Video],
    experiment: dict,
    cfg: dict,
    seed: int,
) -> tuple[nn.Module, dict, pd.DataFrame]:
    """Train for cfg["epochs"], keep the epoch chosen on validation (never on test)."""
    name = experiment_name(experiment)
    torch.manual_seed(seed)  # model init and dropout
    shuffle = torch.Generator().manual_seed(seed)
    dim = train[0].features.shape[1]
    model = build_detector(str(cfg["model"]), dim, cfg)
    if hasattr(model, "norm"):
        model.norm.fit(torch.cat([torch.as_tensor(v.features) for v in train]))
    alpha = _Alpha(experiment.get("alpha", 1.0), float(cfg["alpha_init"]))
    groups = [
        {"params": model.parameters(), "weight_decay": float(cfg["weight_decay"])},
        {"params": alpha.parameters(), "weight_decay": 0.0},  # empty unless learnable
    ]
    optimizer = torch.optim.Adam(groups, lr=float(cfg["lr"]))
    epochs, batch_size = int(cfg["epochs"]), int(cfg["batch_size"])
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"experiment {name!r}: epochs and batch_size must be positive")
    # One-class validation cannot rank videos, so it falls back to the loss.
    by_auc = len({v.label for v in val}) == 2
    best = {"epoch": None, "auc": None, "loss": math.inf, "state": None, "alpha": None}
    history = []
    bar = tqdm(range(1, epochs + 1), desc=f"train {name}", unit="epoch")
    for epoch in bar:
        model.train()
        order = torch.randperm(len(train), generator=shuffle).tolist()
        total, seen = 0.0, 0
        for start in range(0, len(order), batch_size):
            batch = [train[i] for i in order[start : start + batch_size]]
            per_sample, is_synthetic = _per_sample_loss(model, batch, cfg)
            loss = losses.total_loss(losses.scale_synthetic(per_sample, is_synthetic, alpha()))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
            seen += len(batch)
        val_auc, val_loss = _validate(model, val, cfg)
        row = {
            "epoch": epoch,
            "train_loss": total / seen,
            "val_auc": val_auc,
            "val_loss": val_loss,
            "alpha": alpha.value(),
        }
        history.append(row)
        if not val:
            improved = True  # nothing to select on: keep the last epoch
        elif by_auc:
            # Validation AUC saturates on small sets; the loss breaks ties.
            improved = best["auc"] is None or (val_auc, -val_loss) > (best["auc"], -best["loss"])
        else:
            improved = val_loss < best["loss"]
        if improved:
            best.update(
                epoch=epoch,
                auc=val_auc,
                loss=val_loss if val_loss is not None else math.inf,
                state=copy.deepcopy(model.state_dict()),
                alpha=alpha.value(),
            )
        shown = "n/a" if val_auc is None else f"{val_auc:.3f}"
        bar.set_postfix(loss=f"{row['train_loss']:.4f}", val_auc=shown, best=best["epoch"])
        log.info(
            "%s epoch %d/%d train_loss %.4f val_auc %s val_loss %s alpha %.4f",
            name,
            epoch,
            epochs,
            row["train_loss"],
            "n/a" if val_auc is None else f"{val_auc:.4f}",
            "n/a" if val_loss is None else f"{val_loss:.4f}",
            row["alpha"],
        )
    bar.close()
    model.load_state_dict(best["state"])
    model.eval()
    selection = {
        "best_epoch": best["epoch"],
        "val_metric": "video_auc" if by_auc else ("loss" if val else "last_epoch"),
        "val_auc": best["auc"],
        "val_loss": None if math.isinf(best["loss"]) else best["loss"],
        "alpha_final": best["alpha"],
    }
    return model, selection, pd.DataFrame(history)


def _ground_truth(ground_truth_path: str, index_path: str) -> tuple[pd.DataFrame, dict]:
    index = pd.read_parquet(index_path, columns=["video_id", "split", "label", "n_frames"])
    if index["video_id"].duplicated().any():
        raise ValueError(f"{index_path}: duplicate video ids")
    return index.set_index("video_id"), read_intervals(ground_truth_path)


@torch.no_grad()
def score_test(
    model: nn.Module,
    test: list[Video],
    index: pd.DataFrame,
    intervals: dict[str, list[tuple[int, int]]],
    segment_cfg: dict,
) -> pd.DataFrame:
    """Frame-level scores and labels (video_id, frame, score, label) of every test video."""
    model.eval()
    parts = []
    for v in test:
        if v.video_id not in index.index:
            raise ValueError(f"test video {v.video_id!r} is not in the index")
        info = index.loc[v.video_id]
        if int(info["label"]) != v.label:
            raise ValueError(f"test video {v.video_id!r}: index and feature labels disagree")
        if v.label == 0 and intervals.get(v.video_id):
            raise ValueError(f"normal test video {v.video_id!r} has anomaly intervals")
        if v.label == 1 and not intervals.get(v.video_id):
            log.warning("abnormal test video %s has no anomaly intervals", v.video_id)
        x = torch.from_numpy(v.features).unsqueeze(0)
        segment_scores = model(x, torch.ones(x.shape[:2], dtype=torch.bool))[0].numpy()
        scores, labels = align_scores_to_ground_truth(
            v.video_id,
            segment_scores,
            v.segment_frames,
            intervals.get(v.video_id, []),
            int(info["n_frames"]),
            int(segment_cfg["length"]),
            bool(segment_cfg["keep_last_partial"]),
        )
        parts.append(
            pd.DataFrame(
                {
                    "video_id": v.video_id,
                    "frame": np.arange(len(scores), dtype=np.int64),
                    "score": scores.astype(np.float32),
                    "label": labels.astype(np.int8),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def run_experiment(
    shard_paths: list[str],
    ground_truth_path: str,
    index_path: str,
    experiment: dict,
    detect_cfg: dict,
    segment_cfg: dict,
    seed: int,
    out: dict[str, str],
) -> dict:
    """Train one experiment's detector and write out["model"|"scores"|"metrics"|"history"].

    Returns the metrics dict written to out["metrics"].
    """
    name = experiment_name(experiment)
    missing_out = {"model", "scores", "metrics", "history"} - set(out)
    if missing_out:
        raise ValueError(f"experiment {name!r}: missing output paths {sorted(missing_out)}")
    cfg = {**DETECT_DEFAULTS, **detect_cfg}
    videos = load_videos(shard_paths)
    pool = select_training(videos, experiment)
    test = select_test(videos, experiment)
    index, intervals = _ground_truth(ground_truth_path, index_path)
    featured = {v.video_id for v in test}
    lacking = sorted(set(index.index[index["split"] == "test"]) - featured)
    if lacking:
        # Dropping them would quietly change the benchmark.
        raise ValueError(
            f"experiment {name!r}: {len(lacking)} test videos of the index have no features, "
            f"e.g. {lacking[0]!r}"
        )
    train, val = split_validation(pool, float(cfg["val_fraction"]), seed)
    log.info(
        "%s: %d train videos %s, %d validation videos, %d test videos",
        name,
        len(train),
        count_videos(train),
        len(val),
        len(test),
    )
    model, selection, history = _fit(train, val, experiment, cfg, seed)

    scores = score_test(model, test, index, intervals, segment_cfg)
    video_labels = {v.video_id: v.label for v in test}
    metrics = frame_metrics(
        scores["score"].to_numpy(),
        scores["label"].to_numpy(),
        scores["video_id"].to_numpy(),
        video_labels,
    )
    metrics.update(
        experiment=name,
        real_abnormal=bool(experiment["real_abnormal"]),
        synthetic=list(experiment.get("synthetic", [])),
        alpha=experiment.get("alpha", 1.0),
        seed=int(seed),
        model=str(cfg["model"]),
        epochs=int(cfg["epochs"]),
        n_val=len(val),
        **{f"n_train_{k}": n for k, n in count_videos(train).items()},
        **{f"n_val_{k}": n for k, n in count_videos(val).items()},
        **selection,
    )

    state = {k: t.detach().clone().contiguous() for k, t in model.state_dict().items()}
    header = {"model": str(cfg["model"]), "dim": str(train[0].features.shape[1])}
    header["config"] = json.dumps(cfg, sort_keys=True, default=str)
    with atomic_path(out["model"]) as tmp:
        save_file(state, str(tmp), metadata=header)
    write_parquet(scores, out["scores"])
    write_text(history.to_csv(index=False), out["history"])
    write_json(metrics, out["metrics"])
    log.info("%s: test frame AUC %s AP %s", name, metrics["auc"], metrics["ap"])
    return metrics

"""Train one experiment's detector for N seeds, select epochs on validation, score the test set.

Model selection never looks at the test set: each seed carves a validation split from the
training videos (seeded, stratified), and the epoch kept is the one best on it.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import os
from collections import defaultdict
from collections.abc import Iterator

import numpy as np
import pandas as pd
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor, nn
from tqdm import tqdm

from synthvad.detect import losses
from synthvad.detect.data import (
    CROP_MODES,
    StreamSampler,
    TrainSet,
    Video,
    attach_captions,
    average_crops,
    count_videos,
    experiment_name,
    load_videos,
    select_test,
    select_training,
    split_validation,
)
from synthvad.detect.lap import text_bank_from_file, vlr_factor
from synthvad.detect.models import Objective
from synthvad.detect.registry import build_detector, fixed_length
from synthvad.io.atomic import atomic_path, write_json, write_parquet, write_text
from synthvad.metrics import align_scores_to_ground_truth, frame_metrics, summarize_seeds, video_auc
from synthvad.segments import read_intervals

log = logging.getLogger(__name__)

# The `detect` config section: protocol shared by every experiment (schema has the same).
PROTOCOL_DEFAULTS: dict = {
    "seeds": 3,
    "val_fraction": 0.2,
    "train_segments": 64,
    "crops": "mean",
    "alpha_init": 0.5,
    "alpha_lr": 0.01,
    "select_on": "objective",
    "device": "cpu",
    "store_dtype": "float32",
}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        # cuBLAS is only deterministic with a fixed workspace; set before CUDA starts.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        if not torch.cuda.is_available():
            raise ValueError(f"detect.device is {name!r} but no CUDA device is available")
    return torch.device(name)


@contextlib.contextmanager
def deterministic(threads: int | None) -> Iterator[None]:
    """Deterministic kernels and a fixed CPU thread count, restored afterwards.

    warn_only: an op without a deterministic kernel on some device (untested GPU paths)
    logs a warning instead of failing the run.
    """
    previous = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    torch.use_deterministic_algorithms(True, warn_only=True)
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0])
        torch.set_num_threads(previous[1])


class Alpha(nn.Module):
    """SSLS factor: fixed, or learnable as sigmoid(theta) so it stays in (0, 1)."""

    def __init__(self, alpha: float | str, init: float) -> None:
        super().__init__()
        self.learnable = alpha == "learnable"
        if self.learnable:
            if not 0.0 < init < 1.0:
                raise ValueError(f"detect.alpha_init must be in (0, 1), got {init}")
            self.theta = nn.Parameter(torch.tensor(math.log(init / (1.0 - init))))
            self.fixed = 0.0
        else:
            if isinstance(alpha, str) or float(alpha) < 0:
                raise ValueError(
                    f"alpha must be a non-negative number or 'learnable', got {alpha!r}"
                )
            self.fixed = float(alpha)

    def forward(self) -> Tensor:
        return torch.sigmoid(self.theta) if self.learnable else torch.tensor(self.fixed)

    def value(self) -> float:
        return float(self.forward().detach())


def scaled_step_loss(
    objective: Objective, alpha: Alpha, schedule: float = 1.0
) -> tuple[Tensor, dict[str, Tensor]]:
    """Eq. 6-7 on the objective's samples (+ its regularisers, + alpha's own objective).

    The model sees alpha (times `schedule`, GV-VAD's VLR warm-up factor) as a constant
    weight. A learnable alpha is trained only by losses.alpha_objective, which has no
    trivial minimum at 0 (see there).
    """
    a = alpha().to(objective.per_sample.device)
    weight = a.detach() * schedule
    scaled = losses.scale_synthetic(objective.per_sample, objective.n_synthetic, weight)
    loss = losses.total_loss(scaled) + objective.regularizer
    synthetic = objective.n_synthetic > 0
    if alpha.learnable and bool(synthetic.any()) and bool((~synthetic).any()):
        detached = objective.per_sample.detach()
        loss = loss + losses.alpha_objective(
            a, detached[~synthetic].mean(), detached[synthetic].mean()
        )
    parts = {"loss": losses.total_loss(scaled), **objective.parts}
    return loss, {k: v.detach() for k, v in parts.items()}


# Scoring reads and pads this many (row x segment) cells of features at most per forward
# pass (a single longer video goes alone): test-time memory does not grow with the set.
SCORE_BUDGET = 1 << 18


def _padded(videos: list[Video]) -> tuple[Tensor, Tensor, Tensor | None, list[int]]:
    """Every crop of every video as one row: x [sum C, T, D], mask, the captions of each
    row's video ([sum C, T, E], or None without a caption stream), crops per video."""
    rows = [torch.from_numpy(c) for v in videos for c in np.asarray(v.features)]
    length = max(r.shape[0] for r in rows)
    x = torch.zeros(len(rows), length, rows[0].shape[1])
    mask = torch.zeros(len(rows), length, dtype=torch.bool)
    for i, r in enumerate(rows):
        x[i, : len(r)] = r
        mask[i, : len(r)] = True
    captions = None
    if videos[0].captions is not None:
        per_row = [v.captions for v in videos for _ in range(v.features.shape[0])]
        captions = torch.zeros(len(rows), length, per_row[0].shape[-1])
        for i, c in enumerate(per_row):
            captions[i, : len(c)] = torch.from_numpy(c)
    return x, mask, captions, [v.features.shape[0] for v in videos]


def _score_groups(videos: list[Video], batch_size: int) -> Iterator[list[Video]]:
    group: list[Video] = []
    rows = length = 0
    for v in videos:
        c, t = v.features.shape[0], v.features.shape[1]
        if group and (len(group) == batch_size or (rows + c) * max(length, t) > SCORE_BUDGET):
            yield group
            group, rows, length = [], 0, 0
        group.append(v)
        rows, length = rows + c, max(length, t)
    if group:
        yield group


@torch.no_grad()
def score_videos(
    model: nn.Module, videos: list[Video], device: torch.device, batch_size: int
) -> list[np.ndarray]:
    """Segment scores [T] of each video: the mean over its crops (the anchors' test rule).

    Videos go `batch_size` at a time, fewer when their padded rows would exceed
    SCORE_BUDGET cells."""
    model.eval()
    out = []
    for group in _score_groups(videos, batch_size):
        x, mask, captions, crops = _padded(group)
        if captions is None:
            scores = model(x.to(device), mask.to(device)).cpu()
        else:
            scores = model(x.to(device), mask.to(device), captions.to(device)).cpu()
        for v, chunk in zip(group, scores.split(crops), strict=True):
            out.append(chunk[:, : v.features.shape[1]].mean(dim=0).numpy())
    return out


@torch.no_grad()
def validate_weak(
    model: nn.Module,
    val: list[Video],
    val_set: TrainSet | None,
    alpha: float,
    device: torch.device,
    batch_size: int,
) -> tuple[float | None, float]:
    """Video-level AUC (None with one class) and a validation loss.

    The loss is the training objective, Eq. 7 with the current alpha and without
    batch-level regularisers, on the validation videos when `val_set` is given (both
    labels present): smoother than the AUC of a few videos, which saturates or jumps by
    whole pairs. Otherwise it is the BCE of the detector's video scores.
    """
    if val_set is not None:
        model.eval()
        objective = model.objective(val_set.batch(torch.arange(len(val_set)), None))
        scaled = losses.scale_synthetic(objective.per_sample, objective.n_synthetic, alpha)
        objective_loss = float(losses.total_loss(scaled))
    segment_scores = score_videos(model, val, device, batch_size)
    length = max(len(s) for s in segment_scores)
    scores = torch.zeros(len(val), length)
    mask = torch.zeros(len(val), length, dtype=torch.bool)
    for i, s in enumerate(segment_scores):
        scores[i, : len(s)] = torch.from_numpy(s)
        mask[i, : len(s)] = True
    video_scores = model.video_scores(scores.to(device), mask.to(device)).cpu()
    labels = torch.tensor([float(v.label) for v in val])
    if val_set is None:
        objective_loss = float(losses.topk_bce(video_scores.clamp(1e-6, 1 - 1e-6), labels).mean())
    return video_auc(video_scores.numpy(), labels.numpy()), objective_loss


class EpochSelector:
    """Keeps the state of the best epoch by a key (higher is better)."""

    def __init__(self) -> None:
        self.key: tuple | None = None
        self.epoch: int | None = None
        self.state: dict | None = None
        self.info: dict = {}

    def offer(self, epoch: int, key: tuple, model: nn.Module, info: dict) -> None:
        if self.key is None or key > self.key:
            self.key, self.epoch, self.info = key, epoch, info
            self.state = copy.deepcopy(model.state_dict())


def _log_epoch(name: str, seed: int, epoch: int, epochs: int, row: dict) -> None:
    shown = " ".join(
        f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
        for k, v in row.items()
        if k not in ("epoch", "seed")
    )
    log.info("%s seed %d epoch %d/%d %s", name, seed, epoch, epochs, shown)


def _val_metric(has_val: bool, by_auc: bool, both_labels: bool) -> str:
    if not has_val:
        return "last_epoch"
    if by_auc:
        return "video_auc"
    return "objective" if both_labels else "video_bce"  # one label: no ranking, no pairs


def fit_weak(
    train: list[Video],
    val: list[Video],
    experiment: dict,
    cfg: dict,
    protocol: dict,
    seed: int,
    device: torch.device,
    text_bank: Tensor | None = None,
) -> tuple[nn.Module, dict, list[dict]]:
    """Balanced normal/abnormal batches, SSLS-scaled objective, epoch chosen on validation.

    `text_bank` is LAP's class-text bank [K, E] (the class_text_bank rule's output)."""
    name = experiment_name(experiment)
    torch.manual_seed(seed)  # model init, dropout, the uncertainty samples
    segments = int(protocol["train_segments"])
    exact = fixed_length(str(cfg["model"]))
    trainset = TrainSet(train, segments, labelled=True, exact_length=exact)
    model = build_detector(str(cfg["model"]), trainset.features.shape[-1], cfg)
    model.norm.fit_moments(*trainset.segment_moments())
    if text_bank is not None:
        model.set_bank(text_bank)
    if cfg.get("init_from"):
        model.load_released(str(cfg["init_from"]))
        log.info("%s seed %d: weights from %s", name, seed, cfg["init_from"])
    if not cfg.get("train", True):
        selection = {"best_epoch": None, "val_metric": "none (train: false)", "alpha_final": None}
        return model.to(device).eval(), selection, []
    model.to(device)
    trainset.to(device)
    alpha = Alpha(experiment.get("alpha", 1.0), float(protocol["alpha_init"]))
    optimizer = torch.optim.Adam(
        [
            {"params": model.parameters(), "weight_decay": float(cfg["weight_decay"])},
            # Empty unless learnable; alpha has its own step size (it is one number).
            {"params": alpha.parameters(), "weight_decay": 0.0, "lr": float(protocol["alpha_lr"])},
        ],
        lr=float(cfg["lr"]),
    )
    streams = [np.flatnonzero(trainset.video_labels == y) for y in (0, 1)]
    sampler = StreamSampler(streams, trainset.sources, int(cfg["batch_size"]), seed)
    crops = torch.Generator().manual_seed(seed) if protocol["crops"] == "augment" else None
    both_labels = len({v.label for v in val}) == 2
    by_auc = both_labels and protocol["select_on"] == "video_auc"
    # Validation videos as one batch for the objective, crops averaged (as at test time).
    val_set = (
        TrainSet(average_crops(val), segments, labelled=True, exact_length=exact).to(device)
        if both_labels
        else None
    )
    selector, history = EpochSelector(), []
    epochs = int(cfg["epochs"])
    # GV-VAD's VLR schedule (LAP only): a factor on alpha by step.
    vlr_strategy = getattr(model, "vlr_strategy", "none")
    total_steps = epochs * sampler.steps_per_epoch
    step = 0
    for epoch in tqdm(range(1, epochs + 1), desc=f"train {name} seed {seed}", unit="epoch"):
        model.train()
        sums: dict[str, float] = defaultdict(float)
        for _ in range(sampler.steps_per_epoch):
            step += 1
            batch = trainset.batch(sampler.next_index(), crops)
            schedule = vlr_factor(step, total_steps, vlr_strategy)
            loss, parts = scaled_step_loss(model.objective(batch), alpha, schedule)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            for key, value in parts.items():
                sums[key] += float(value) / sampler.steps_per_epoch
        val_auc, val_loss = (
            validate_weak(model, val, val_set, alpha.value(), device, int(cfg["batch_size"]))
            if val
            else (None, None)
        )
        row = {"seed": seed, "epoch": epoch, **sums}
        row.update(val_auc=val_auc, val_loss=val_loss, alpha=alpha.value())
        history.append(row)
        _log_epoch(name, seed, epoch, epochs, row)
        if not val:
            key: tuple = (epoch,)  # nothing to select on: keep the last epoch
        elif by_auc:
            key = (val_auc, -val_loss)  # AUC saturates on small sets; the loss breaks ties
        else:
            key = (-val_loss,)
        info = {"val_auc": val_auc, "val_loss": val_loss, "alpha_final": alpha.value()}
        selector.offer(epoch, key, model, info)
    model.load_state_dict(selector.state)
    model.eval()
    selection = {
        "best_epoch": selector.epoch,
        "val_metric": _val_metric(bool(val), by_auc, both_labels),
        **selector.info,
    }
    return model, selection, history


def drop_schedule(epoch: int, cfg: dict) -> float | None:
    """Fraction to drop when `epoch` re-ranks the training segments, else None.

    After `warmup_epochs`, every `refine_every` epochs; the fraction grows linearly to
    `drop_max` at the last epoch, so suspected anomalies leave training gradually.
    """
    warmup, every, epochs = int(cfg["warmup_epochs"]), int(cfg["refine_every"]), int(cfg["epochs"])
    if epoch <= warmup or (epoch - warmup - 1) % every:
        return None
    return float(cfg["drop_max"]) * min(1.0, (epoch - warmup) / max(1, epochs - warmup))


def _segment_rows(videos: list[Video]) -> Tensor:
    """Every (crop, segment) feature row of `videos`: [S, D]."""
    return torch.cat(
        [torch.from_numpy(np.asarray(v.features).reshape(-1, v.features.shape[-1])) for v in videos]
    )


@torch.no_grad()
def _errors(model: nn.Module, rows: Tensor, batch: int = 8192) -> Tensor:
    model.eval()
    return torch.cat([model.errors(rows[i : i + batch]) for i in range(0, len(rows), batch)])


def _trimmed_mean(errors: Tensor, drop: float) -> float:
    return float(errors[losses.self_paced_keep(errors, drop)].mean())


def fit_unsupervised(
    train: list[Video],
    val: list[Video],
    experiment: dict,
    cfg: dict,
    protocol: dict,
    seed: int,
    device: torch.device,
) -> tuple[nn.Module, dict, list[dict]]:
    """LBR-SPR at feature level: reconstruct segments, self-paced dropping of the worst.

    Never reads a label: validation is the reconstruction error of held-out segments,
    trimmed by `drop_max` because held-out videos hold anomalies too.
    """
    name = experiment_name(experiment)
    torch.manual_seed(seed)
    shuffle = torch.Generator().manual_seed(seed)
    rows = _segment_rows(train)
    model = build_detector(str(cfg["model"]), rows.shape[1], cfg)
    model.norm.fit(rows)
    model.to(device)
    rows = rows.to(device)
    val_rows = _segment_rows(val).to(device) if val else None
    optimizer = torch.optim.Adam(
        model.parameters(), lr=float(cfg["lr"]), weight_decay=float(cfg["weight_decay"])
    )
    drop_max, batch_size = float(cfg["drop_max"]), int(cfg["batch_size"])
    epochs = int(cfg["epochs"])
    kept = torch.arange(len(rows), device=device)
    dropped = 0.0
    selector, history = EpochSelector(), []
    for epoch in tqdm(range(1, epochs + 1), desc=f"train {name} seed {seed}", unit="epoch"):
        drop = drop_schedule(epoch, cfg)
        if drop is not None:
            keep = losses.self_paced_keep(_errors(model, rows), drop)
            kept, dropped = torch.where(keep)[0], drop
        model.train()
        order = kept[torch.randperm(len(kept), generator=shuffle).to(device)]
        total = 0.0
        for start in range(0, len(order), batch_size):
            loss = model.errors(rows[order[start : start + batch_size]]).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * min(batch_size, len(order) - start)
        val_loss = _trimmed_mean(_errors(model, val_rows), drop_max) if val else None
        row = {"seed": seed, "epoch": epoch, "loss": total / len(order), "dropped": dropped}
        row["val_loss"] = val_loss
        history.append(row)
        _log_epoch(name, seed, epoch, epochs, row)
        key = (epoch,) if val_loss is None else (-val_loss,)
        selector.offer(epoch, key, model, {"val_loss": val_loss, "val_auc": None})
    model.load_state_dict(selector.state)
    # Calibrate on held-out segments: training errors are optimistic (the model fit them).
    errors = _errors(model, val_rows if val else rows)
    model.calibrate(errors[losses.self_paced_keep(errors, drop_max)])
    model.eval()
    selection = {
        "best_epoch": selector.epoch,
        "val_metric": "trimmed_reconstruction" if val else "last_epoch",
        "alpha_final": None,
        **selector.info,
    }
    return model, selection, history


def _ground_truth(ground_truth_path: str, index_path: str) -> tuple[pd.DataFrame, dict]:
    index = pd.read_parquet(index_path, columns=["video_id", "split", "label", "n_frames"])
    if index["video_id"].duplicated().any():
        raise ValueError(f"{index_path}: duplicate video ids")
    return index.set_index("video_id"), read_intervals(ground_truth_path)


def score_test(
    model: nn.Module,
    test: list[Video],
    index: pd.DataFrame,
    intervals: dict[str, list[tuple[int, int]]],
    segment_cfg: dict,
    device: torch.device,
    batch_size: int,
) -> pd.DataFrame:
    """Frame-level scores and labels (video_id, frame, score, label) of every test video."""
    for v in test:
        if v.video_id not in index.index:
            raise ValueError(f"test video {v.video_id!r} is not in the index")
        if int(index.loc[v.video_id, "label"]) != v.label:
            raise ValueError(f"test video {v.video_id!r}: index and feature labels disagree")
        if v.label == 0 and intervals.get(v.video_id):
            raise ValueError(f"normal test video {v.video_id!r} has anomaly intervals")
        if v.label == 1 and not intervals.get(v.video_id):
            log.warning("abnormal test video %s has no anomaly intervals", v.video_id)
    parts = []
    for v, segment_scores in zip(test, score_videos(model, test, device, batch_size), strict=True):
        scores, labels = align_scores_to_ground_truth(
            v.video_id,
            segment_scores,
            v.segment_frames,
            intervals.get(v.video_id, []),
            int(index.loc[v.video_id, "n_frames"]),
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


def seed_list(experiment: dict, protocol: dict, base_seed: int) -> list[int]:
    n = int(experiment.get("seeds") or protocol["seeds"])
    if n < 1:
        raise ValueError(f"experiment {experiment_name(experiment)!r}: seeds must be >= 1")
    return [base_seed + i for i in range(n)]


def _check_setup(experiment: dict, cfg: dict, protocol: dict) -> None:
    name = experiment_name(experiment)
    if protocol["crops"] not in CROP_MODES:
        raise ValueError(f"detect.crops must be one of {CROP_MODES}, got {protocol['crops']!r}")
    model = str(cfg["model"])
    if experiment.get("unsupervised") and model != "spr_unsupervised":
        raise ValueError(
            f"experiment {name!r}: unsupervised (labels removed) needs a detector whose model "
            f"is spr_unsupervised, got {model!r}"
        )


def run_experiment(
    feature_paths: list[str],
    ground_truth_path: str,
    index_path: str,
    experiment: dict,
    detector_cfg: dict,
    protocol: dict,
    segment_cfg: dict,
    seed: int,
    out: dict[str, str],
    threads: int | None = None,
    text_bank_path: str | None = None,
    caption_paths: list[str] | None = None,
) -> dict:
    """Train the experiment's detector for every seed; write out["model"|"scores"|"metrics"|
    "history"]: all seeds' weights, frame scores and epoch logs (a `seed` column), and
    metrics per seed with their mean and std. Returns the metrics dict.

    `feature_paths`: feature stores (the workflow's; read one video at a time) or feature
    shards (read into memory). `caption_paths`: caption shards (the caption_features
    rule's), for a detector with `captions: true`."""
    name = experiment_name(experiment)
    missing_out = {"model", "scores", "metrics", "history"} - set(out)
    if missing_out:
        raise ValueError(f"experiment {name!r}: missing output paths {sorted(missing_out)}")
    protocol = {**PROTOCOL_DEFAULTS, **protocol}
    cfg = dict(detector_cfg)
    _check_setup(experiment, cfg, protocol)
    device = resolve_device(str(protocol["device"]))
    unsupervised = bool(experiment.get("unsupervised", False))

    videos = load_videos(feature_paths)
    if bool(cfg.get("captions")) != bool(caption_paths):
        raise ValueError(
            f"experiment {name!r}: the detector's captions key is {bool(cfg.get('captions'))} "
            f"but {len(caption_paths or [])} caption shards were given"
        )
    if caption_paths:
        captioned = load_videos(caption_paths)
        videos = attach_captions(videos, captioned)
        cfg["caption_dim"] = int(captioned[0].features.shape[-1])  # kept in the model header
    if protocol["crops"] == "mean":
        videos = average_crops(videos)
    pool = select_training(videos, experiment)
    test = select_test(videos, experiment)
    index, intervals = _ground_truth(ground_truth_path, index_path)
    lacking = sorted(set(index.index[index["split"] == "test"]) - {v.video_id for v in test})
    if lacking:
        # Dropping them would quietly change the benchmark.
        raise ValueError(
            f"experiment {name!r}: {len(lacking)} test videos of the index have no features, "
            f"e.g. {lacking[0]!r}"
        )
    fit = fit_unsupervised if cfg["model"] == "spr_unsupervised" else fit_weak
    needs_bank = cfg["model"] == "lap" and cfg.get("pseudo_labels", "released") != "off"
    if needs_bank and not text_bank_path:
        raise ValueError(f"experiment {name!r}: lap's pseudo labels need the class-text bank")
    extra = {"text_bank": text_bank_from_file(text_bank_path)} if needs_bank else {}

    per_seed, scores, histories, states = [], [], [], {}
    with deterministic(threads):
        for s in seed_list(experiment, protocol, seed):
            train, val = split_validation(
                pool, float(protocol["val_fraction"]), s, not unsupervised
            )
            log.info(
                "%s seed %d: %d train videos %s, %d validation, %d test",
                name, s, len(train), count_videos(train), len(val), len(test),
            )  # fmt: skip
            model, selection, history = fit(
                train, val, experiment, cfg, protocol, s, device, **extra
            )
            frames = score_test(
                model, test, index, intervals, segment_cfg, device, int(cfg["batch_size"])
            )
            metrics = frame_metrics(
                frames["score"].to_numpy(),
                frames["label"].to_numpy(),
                frames["video_id"].to_numpy(),
                {v.video_id: v.label for v in test},
            )
            metrics.update(seed=s, n_val=len(val), **selection)
            metrics.update({f"n_train_{k}": n for k, n in count_videos(train).items()})
            metrics.update({f"n_val_{k}": n for k, n in count_videos(val).items()})
            per_seed.append(metrics)
            scores.append(frames.assign(seed=s))
            histories.extend(history)
            states.update(
                {
                    f"seed{s}/{k}": t.detach().cpu().clone().contiguous()
                    for k, t in model.state_dict().items()
                }
            )
            log.info("%s seed %d: test frame AUC %s AP %s", name, s, metrics["auc"], metrics["ap"])

    summary = {
        "experiment": name,
        "detector": experiment.get("detector"),
        "model": str(cfg["model"]),
        "real_abnormal": experiment["real_abnormal"],  # true, false or a number of videos
        "synthetic": list(experiment.get("synthetic", [])),
        "alpha": experiment.get("alpha", 1.0),
        "unsupervised": unsupervised,
        **summarize_seeds(per_seed),
    }
    header = {
        "model": str(cfg["model"]),
        "dim": int(test[0].features.shape[-1]),
        "detector": cfg,
        "seeds": [m["seed"] for m in per_seed],
    }
    # One metadata key: safetensors writes several in hash order, so the same run would
    # give other bytes each time.
    metadata = {"synthvad": json.dumps(header, sort_keys=True, default=str)}
    with atomic_path(out["model"]) as tmp:
        save_file(states, str(tmp), metadata=metadata)
    columns = ["seed", "video_id", "frame", "score", "label"]
    write_parquet(pd.concat(scores, ignore_index=True)[columns], out["scores"])
    write_text(pd.DataFrame(histories).to_csv(index=False), out["history"])
    write_json(summary, out["metrics"])
    log.info("%s: test frame AUC %s +- %s over seeds", name, summary["auc"], summary["auc_std"])
    return summary


def load_detector(path: str, seed: int | None = None) -> nn.Module:
    """The model of `seed` (default: the first) from a run's model.safetensors, in eval mode."""
    with safe_open(path, framework="pt") as fh:
        meta = json.loads(fh.metadata()["synthvad"])
        seeds = meta["seeds"]
        seed = seeds[0] if seed is None else seed
        if seed not in seeds:
            raise ValueError(f"{path}: no model for seed {seed} (seeds: {seeds})")
        prefix = f"seed{seed}/"
        state = {k[len(prefix) :]: fh.get_tensor(k) for k in fh.keys() if k.startswith(prefix)}
    model = build_detector(meta["model"], int(meta["dim"]), meta["detector"])
    model.load_state_dict(state)
    return model.eval()

"""Train one experiment's detector for N seeds, select epochs on validation, score the test set.

Model selection never looks at the test set: each seed carves a validation split from the
training videos (seeded, stratified), and the epoch kept is the one best on it.

run_experiment = load_inputs, then run_seed per seed, then write_outputs. Both training
regimes (fit_weak, fit_unsupervised) run their epochs through epochs.train_epochs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from synthvad.config import check_label_free, load_schema
from synthvad.detect import losses
from synthvad.detect.data import (
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
from synthvad.detect.epochs import EpochReport, TrainingJob, adam, descend, train_epochs
from synthvad.detect.lap import text_bank_from_file, vlr_factor
from synthvad.detect.models import Objective
from synthvad.detect.registry import build_detector, fixed_length
from synthvad.devices import resolve_device
from synthvad.io.atomic import atomic_path, write_json, write_parquet, write_text
from synthvad.metrics import align_scores_to_ground_truth, frame_metrics, summarize_seeds, video_auc
from synthvad.segments import read_intervals

log = logging.getLogger(__name__)

OUTPUTS = ("model", "scores", "metrics", "history")  # the keys of run_experiment's `out`


def protocol_with_defaults(protocol: dict) -> dict:
    """`protocol` over the defaults of the config's `detect` section.

    The schema holds those defaults (their one source). A direct call (tests, benchmarks)
    skips config validation, so the crop mode, which picks code paths, is checked here."""
    section = load_schema()["properties"]["detect"]["properties"]
    defaults = {key: spec["default"] for key, spec in section.items() if "default" in spec}
    filled = {**defaults, **protocol}
    modes = section["crops"]["enum"]
    if filled["crops"] not in modes:
        raise ValueError(f"detect.crops must be one of {modes}, got {filled['crops']!r}")
    return filled


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


def _val_metric(has_val: bool, by_auc: bool, both_labels: bool) -> str:
    if not has_val:
        return "last_epoch"
    if by_auc:
        return "video_auc"
    return "objective" if both_labels else "video_bce"  # one label: no ranking, no pairs


def _weak_detector(job: TrainingJob, trainset: TrainSet, text_bank: Tensor | None) -> nn.Module:
    """The detector, standardised on the training segments, with LAP's class-text bank and
    released weights where configured."""
    model = build_detector(str(job.cfg["model"]), trainset.features.shape[-1], job.cfg)
    model.norm.fit_moments(*trainset.segment_moments())
    if text_bank is not None:
        model.set_bank(text_bank)
    if job.cfg.get("init_from"):
        model.load_released(str(job.cfg["init_from"]))
        log.info("%s seed %d: weights from %s", job.name, job.seed, job.cfg["init_from"])
    return model


class WeakEpoch:
    """One epoch of weak training: balanced normal/abnormal batches, SSLS-scaled objective."""

    def __init__(
        self,
        job: TrainingJob,
        model: nn.Module,
        trainset: TrainSet,
        alpha: Alpha,
        optimizer: torch.optim.Optimizer,
    ) -> None:
        self.model, self.trainset, self.alpha, self.optimizer = model, trainset, alpha, optimizer
        streams = [np.flatnonzero(trainset.video_labels == y) for y in (0, 1)]
        self.sampler = StreamSampler(
            streams, trainset.sources, int(job.cfg["batch_size"]), job.seed
        )
        augment = job.protocol["crops"] == "augment"
        self.crops = torch.Generator().manual_seed(job.seed) if augment else None
        # GV-VAD's VLR schedule (LAP only): a factor on alpha by step of the whole run.
        self.vlr_strategy = getattr(model, "vlr_strategy", "none")
        self.total_steps = int(job.cfg["epochs"]) * self.sampler.steps_per_epoch
        self.step = 0

    def __call__(self, epoch: int) -> dict[str, float]:
        """Train one epoch; the mean of each loss part over its steps."""
        self.model.train()
        steps = self.sampler.steps_per_epoch
        means: dict[str, float] = defaultdict(float)
        for _ in range(steps):
            self.step += 1
            batch = self.trainset.batch(self.sampler.next_index(), self.crops)
            schedule = vlr_factor(self.step, self.total_steps, self.vlr_strategy)
            loss, parts = scaled_step_loss(self.model.objective(batch), self.alpha, schedule)
            descend(self.optimizer, loss)
            for key, value in parts.items():
                means[key] += float(value) / steps
        return means


class WeakValidation:
    """Each epoch's validation of a weakly supervised detector (validate_weak)."""

    def __init__(
        self, job: TrainingJob, model: nn.Module, alpha: Alpha, exact_length: bool
    ) -> None:
        self.job, self.model, self.alpha = job, model, alpha
        both_labels = len({v.label for v in job.val}) == 2
        self.by_auc = both_labels and job.protocol["select_on"] == "video_auc"
        self.metric = _val_metric(bool(job.val), self.by_auc, both_labels)
        # Validation videos as one batch for the objective, crops averaged (as at test time).
        segments = int(job.protocol["train_segments"])
        self.val_set = None
        if both_labels:
            val = average_crops(job.val)
            val_set = TrainSet(val, segments, labelled=True, exact_length=exact_length)
            self.val_set = val_set.to(job.device)
        self.batch_size = int(job.cfg["batch_size"])

    def __call__(self) -> EpochReport:
        alpha = self.alpha.value()
        auc = loss = key = None  # without validation videos there is nothing to select on
        if self.job.val:
            job = self.job
            auc, loss = validate_weak(
                self.model, job.val, self.val_set, alpha, job.device, self.batch_size
            )
            # AUC saturates on small sets; the loss breaks ties
            key = (auc, -loss) if self.by_auc else (-loss,)
        return EpochReport(
            key,
            columns={"val_auc": auc, "val_loss": loss, "alpha": alpha},
            selected={"val_auc": auc, "val_loss": loss, "alpha_final": alpha},
        )


# Selection of a detector that keeps its initial (e.g. released) weights.
UNTRAINED_SELECTION = {"best_epoch": None, "val_metric": "none (train: false)", "alpha_final": None}


def fit_weak(
    job: TrainingJob, text_bank: Tensor | None = None
) -> tuple[nn.Module, dict, list[dict]]:
    """Balanced normal/abnormal batches, SSLS-scaled objective, epoch chosen on validation.

    `text_bank` is LAP's class-text bank [K, E] (the class_text_bank rule's output)."""
    torch.manual_seed(job.seed)  # model init, dropout, the uncertainty samples
    exact = fixed_length(str(job.cfg["model"]))
    segments = int(job.protocol["train_segments"])
    trainset = TrainSet(job.train, segments, labelled=True, exact_length=exact)
    model = _weak_detector(job, trainset, text_bank)
    if not job.cfg.get("train", True):
        return model.to(job.device).eval(), dict(UNTRAINED_SELECTION), []
    model.to(job.device)
    trainset.to(job.device)
    alpha = Alpha(job.experiment.get("alpha", 1.0), float(job.protocol["alpha_init"]))
    # Empty unless learnable; alpha has its own step size (it is one number).
    alpha_group = {
        "params": alpha.parameters(),
        "weight_decay": 0.0,
        "lr": float(job.protocol["alpha_lr"]),
    }
    optimizer = adam(model, job.cfg, alpha_group)
    train_epoch = WeakEpoch(job, model, trainset, alpha, optimizer)
    validation = WeakValidation(job, model, alpha, exact)
    selection, history = train_epochs(job, model, train_epoch, validation, validation.metric)
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


class SelfPacedEpoch:
    """One epoch of LBR-SPR: on drop_schedule, re-rank the training segments by error and
    leave out the worst; then reconstruct the kept ones in shuffled batches."""

    def __init__(
        self, job: TrainingJob, model: nn.Module, rows: Tensor, optimizer: torch.optim.Optimizer
    ) -> None:
        self.cfg, self.model, self.rows, self.optimizer = job.cfg, model, rows, optimizer
        self.batch_size = int(job.cfg["batch_size"])
        self.shuffle = torch.Generator().manual_seed(job.seed)
        self.kept = torch.arange(len(rows), device=rows.device)
        self.dropped = 0.0

    def __call__(self, epoch: int) -> dict[str, float]:
        """Train one epoch; its mean loss and the fraction of segments left out."""
        drop = drop_schedule(epoch, self.cfg)
        if drop is not None:
            keep = losses.self_paced_keep(_errors(self.model, self.rows), drop)
            self.kept, self.dropped = torch.where(keep)[0], drop
        self.model.train()
        order = self.kept[
            torch.randperm(len(self.kept), generator=self.shuffle).to(self.rows.device)
        ]
        total = 0.0
        for start in range(0, len(order), self.batch_size):
            loss = self.model.errors(self.rows[order[start : start + self.batch_size]]).mean()
            descend(self.optimizer, loss)
            total += float(loss.detach()) * min(self.batch_size, len(order) - start)
        return {"loss": total / len(order), "dropped": self.dropped}


def fit_unsupervised(job: TrainingJob) -> tuple[nn.Module, dict, list[dict]]:
    """LBR-SPR at feature level: reconstruct segments, self-paced dropping of the worst.

    Never reads a label: validation is the reconstruction error of held-out segments,
    trimmed by `drop_max` because held-out videos hold anomalies too.
    """
    torch.manual_seed(job.seed)
    rows = _segment_rows(job.train)
    model = build_detector(str(job.cfg["model"]), rows.shape[1], job.cfg)
    model.norm.fit(rows)
    model.to(job.device)
    rows = rows.to(job.device)
    val_rows = _segment_rows(job.val).to(job.device) if job.val else None
    drop_max = float(job.cfg["drop_max"])

    def validate() -> EpochReport:
        loss = None if val_rows is None else _trimmed_mean(_errors(model, val_rows), drop_max)
        return EpochReport(
            None if loss is None else (-loss,),
            columns={"val_loss": loss},
            selected={"alpha_final": None, "val_loss": loss, "val_auc": None},
        )

    train_epoch = SelfPacedEpoch(job, model, rows, adam(model, job.cfg))
    val_metric = "trimmed_reconstruction" if job.val else "last_epoch"
    selection, history = train_epochs(job, model, train_epoch, validate, val_metric)
    # Calibrate on held-out segments: training errors are optimistic (the model fit them).
    errors = _errors(model, rows if val_rows is None else val_rows)
    model.calibrate(errors[losses.self_paced_keep(errors, drop_max)])
    return model.eval(), selection, history


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


@dataclass(frozen=True)
class ExperimentInputs:
    """What every seed of an experiment reads, loaded once."""

    cfg: dict  # the detector's, with caption_dim where captions are attached
    pool: list[Video]  # training videos, split per seed into train and validation
    test: list[Video]
    index: pd.DataFrame  # the video index, by video_id
    intervals: dict[str, list[tuple[int, int]]]  # ground-truth anomaly frames per video
    text_bank: Tensor | None  # LAP's class-text bank, where its pseudo labels need one


@dataclass(frozen=True)
class SeedResult:
    """One seed's share of the experiment's outputs."""

    metrics: dict  # test metrics, the epoch selection and the split sizes
    frames: pd.DataFrame  # frame scores and labels, with a seed column
    history: list[dict]  # one row per epoch
    state: dict[str, Tensor]  # the model's weights, keys prefixed seed{s}/


def _check_outputs(name: str, out: dict[str, str]) -> None:
    missing = set(OUTPUTS) - set(out)
    if missing:
        raise ValueError(f"experiment {name!r}: missing output paths {sorted(missing)}")


def _load_features(
    name: str,
    feature_paths: list[str],
    caption_paths: list[str] | None,
    cfg: dict,
    protocol: dict,
) -> tuple[list[Video], dict]:
    """Every video with its captions (when the detector reads them) and its crops averaged
    (crops: mean); the detector config, with the captions' width where attached."""
    videos = load_videos(feature_paths)
    if bool(cfg.get("captions")) != bool(caption_paths):
        raise ValueError(
            f"experiment {name!r}: the detector's captions key is {bool(cfg.get('captions'))} "
            f"but {len(caption_paths or [])} caption shards were given"
        )
    if caption_paths:
        captioned = load_videos(caption_paths)
        videos = attach_captions(videos, captioned)
        cfg = {**cfg, "caption_dim": int(captioned[0].features.shape[-1])}  # in the header
    if protocol["crops"] == "mean":
        videos = average_crops(videos)
    return videos, cfg


def _check_test_coverage(name: str, index: pd.DataFrame, test: list[Video]) -> None:
    """Every test video of the index has features: dropping some would quietly change the
    benchmark."""
    lacking = sorted(set(index.index[index["split"] == "test"]) - {v.video_id for v in test})
    if lacking:
        raise ValueError(
            f"experiment {name!r}: {len(lacking)} test videos of the index have no features, "
            f"e.g. {lacking[0]!r}"
        )


def _text_bank(name: str, cfg: dict, text_bank_path: str | None) -> Tensor | None:
    """LAP's class-text bank, when its pseudo labels are on; otherwise None."""
    if cfg["model"] != "lap" or cfg.get("pseudo_labels", "released") == "off":
        return None
    if not text_bank_path:
        raise ValueError(f"experiment {name!r}: lap's pseudo labels need the class-text bank")
    return text_bank_from_file(text_bank_path)


def load_inputs(
    experiment: dict,
    detector_cfg: dict,
    protocol: dict,
    feature_paths: list[str],
    caption_paths: list[str] | None,
    ground_truth_path: str,
    index_path: str,
    text_bank_path: str | None,
) -> ExperimentInputs:
    """The experiment's training pool and test videos, the ground truth, LAP's bank."""
    name = experiment_name(experiment)
    videos, cfg = _load_features(name, feature_paths, caption_paths, detector_cfg, protocol)
    pool = select_training(videos, experiment)
    test = select_test(videos, experiment)
    index, intervals = _ground_truth(ground_truth_path, index_path)
    _check_test_coverage(name, index, test)
    return ExperimentInputs(
        cfg, pool, test, index, intervals, _text_bank(name, cfg, text_bank_path)
    )


def _seed_metrics(
    frames: pd.DataFrame, test: list[Video], job: TrainingJob, selection: dict
) -> dict:
    """Test frame metrics of one seed, with its epoch selection and split sizes."""
    metrics = frame_metrics(
        frames["score"].to_numpy(),
        frames["label"].to_numpy(),
        frames["video_id"].to_numpy(),
        {v.video_id: v.label for v in test},
    )
    metrics.update(seed=job.seed, n_val=len(job.val), **selection)
    metrics.update({f"n_train_{k}": n for k, n in count_videos(job.train).items()})
    metrics.update({f"n_val_{k}": n for k, n in count_videos(job.val).items()})
    return metrics


def run_seed(
    inputs: ExperimentInputs,
    experiment: dict,
    protocol: dict,
    segment_cfg: dict,
    seed: int,
    device: torch.device,
) -> SeedResult:
    """Split off this seed's validation videos, train, and score the test set."""
    name, cfg, test = experiment_name(experiment), inputs.cfg, inputs.test
    unsupervised = bool(experiment.get("unsupervised", False))
    # Without labels the split cannot stratify by them.
    train, val = split_validation(
        inputs.pool, float(protocol["val_fraction"]), seed, not unsupervised
    )
    log.info(
        "%s seed %d: %d train videos %s, %d validation, %d test",
        name, seed, len(train), count_videos(train), len(val), len(test),
    )  # fmt: skip
    job = TrainingJob(train, val, experiment, cfg, protocol, seed, device)
    if cfg["model"] == "spr_unsupervised":
        model, selection, history = fit_unsupervised(job)
    else:
        model, selection, history = fit_weak(job, inputs.text_bank)
    batch_size = int(cfg["batch_size"])
    frames = score_test(
        model, test, inputs.index, inputs.intervals, segment_cfg, device, batch_size
    )
    metrics = _seed_metrics(frames, test, job, selection)
    log.info("%s seed %d: test frame AUC %s AP %s", name, seed, metrics["auc"], metrics["ap"])
    state = {
        f"seed{seed}/{k}": t.detach().cpu().clone().contiguous()
        for k, t in model.state_dict().items()
    }
    return SeedResult(metrics, frames.assign(seed=seed), history, state)


def _summary(experiment: dict, cfg: dict, per_seed: list[dict]) -> dict:
    """The experiment's metrics.json: its settings, per-seed metrics, their mean and std."""
    return {
        "experiment": experiment_name(experiment),
        "detector": experiment.get("detector"),
        "model": str(cfg["model"]),
        "real_abnormal": experiment["real_abnormal"],  # true, false or a number of videos
        "synthetic": list(experiment.get("synthetic", [])),
        "alpha": experiment.get("alpha", 1.0),
        "unsupervised": bool(experiment.get("unsupervised", False)),
        **summarize_seeds(per_seed),
    }


def write_outputs(
    out: dict[str, str], summary: dict, inputs: ExperimentInputs, results: list[SeedResult]
) -> None:
    """Every seed's weights (one file, load_detector reads it), frame scores and history,
    and the summary."""
    header = {
        "model": str(inputs.cfg["model"]),
        "dim": int(inputs.test[0].features.shape[-1]),
        "detector": inputs.cfg,
        "seeds": [r.metrics["seed"] for r in results],
    }
    # One metadata key: safetensors writes several in hash order, so the same run would
    # give other bytes each time.
    metadata = {"synthvad": json.dumps(header, sort_keys=True, default=str)}
    states = {key: tensor for r in results for key, tensor in r.state.items()}
    with atomic_path(out["model"]) as tmp:
        save_file(states, str(tmp), metadata=metadata)
    columns = ["seed", "video_id", "frame", "score", "label"]
    scores = pd.concat([r.frames for r in results], ignore_index=True)[columns]
    write_parquet(scores, out["scores"])
    history = [row for r in results for row in r.history]
    write_text(pd.DataFrame(history).to_csv(index=False), out["history"])
    write_json(summary, out["metrics"])


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
    _check_outputs(name, out)
    protocol = protocol_with_defaults(protocol)
    check_label_free(name, experiment, str(detector_cfg["model"]))
    device = resolve_device(str(protocol["device"]), "detect.device")
    inputs = load_inputs(
        experiment, dict(detector_cfg), protocol, feature_paths, caption_paths,
        ground_truth_path, index_path, text_bank_path,
    )  # fmt: skip
    with deterministic(threads):
        results = [
            run_seed(inputs, experiment, protocol, segment_cfg, s, device)
            for s in seed_list(experiment, protocol, seed)
        ]
    summary = _summary(experiment, inputs.cfg, [r.metrics for r in results])
    write_outputs(out, summary, inputs, results)
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

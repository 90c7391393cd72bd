"""Detectors: segment features [B, T, D] -> segment anomaly scores [B, T] in (0, 1).

Weakly supervised detectors (`supervision = "weak"`) also give `objective(batch)`: the
unscaled per-sample losses that synthetic sample loss scaling (GV-VAD Eq. 6) weights,
plus batch-level regularisers. The unsupervised one is trained on segments by the
self-paced loop in train.py and never sees a label.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from synthvad.detect import losses
from synthvad.detect.data import Batch
from synthvad.detect.layers import Standardize


@dataclass
class Objective:
    """What one training step minimises, before synthetic sample loss scaling."""

    per_sample: Tensor  # [P] unscaled loss of each sample (or pair)
    n_synthetic: Tensor  # [P] synthetic members of each sample (0/1, pairs 0/1/2)
    regularizer: Tensor  # scalar added unscaled (batch-level terms, e.g. DARM's)
    parts: dict[str, Tensor] = field(default_factory=dict)  # scalar terms, for the log


def require_labels(batch: Batch, model: str) -> Tensor:
    if batch.labels is None:
        raise ValueError(f"detector {model!r} is weakly supervised and needs video labels")
    return batch.labels


def split_pairs(labels: Tensor) -> tuple[Tensor, Tensor]:
    """Indices of abnormal and normal videos, paired in order (equal counts)."""
    abnormal = torch.where(labels == 1)[0]
    normal = torch.where(labels == 0)[0]
    n = min(len(abnormal), len(normal))
    if n == 0:
        raise ValueError("a ranking batch needs at least one normal and one abnormal video")
    return abnormal[:n], normal[:n]


class SegmentMLP(nn.Module):
    """Per-segment MLP D -> hidden -> hidden/4 -> 1 with a sigmoid."""

    supervision = "weak"

    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        if hidden < 4:
            raise ValueError(f"hidden must be at least 4, got {hidden}")
        self.norm = Standardize(dim)
        self.net = nn.Sequential(
            nn.Linear(dim, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden // 4),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden // 4, 1),
        )

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        scores = torch.sigmoid(self.net(self.norm(x)).squeeze(-1))
        # Padded segments score 0 so nothing downstream can mistake them for evidence.
        return scores * mask.to(scores.dtype)


class TopKBCE(SegmentMLP):
    """LAP/VadCLIP-style head: video score = top-k mean, BCE against the video label."""

    def __init__(self, dim: int, cfg: dict) -> None:
        super().__init__(dim, int(cfg["hidden"]), float(cfg["dropout"]))
        self.k = int(cfg["topk"])

    def video_scores(self, scores: Tensor, mask: Tensor) -> Tensor:
        return losses.topk_mean(scores, mask, self.k)

    def objective(self, batch: Batch) -> Objective:
        labels = require_labels(batch, "topk_bce")
        scores = self(batch.x, batch.mask)
        bce = losses.topk_bce(self.video_scores(scores, batch.mask), labels)
        return Objective(bce, batch.is_synthetic.long(), bce.new_zeros(()), {"bce": bce.mean()})


class MILRanking(SegmentMLP):
    """Sultani et al.: hinge ranking of bag maxima plus smoothness and sparsity."""

    def __init__(self, dim: int, cfg: dict) -> None:
        super().__init__(dim, int(cfg["hidden"]), float(cfg["dropout"]))
        self.lambda_smooth = float(cfg["lambda_smooth"])
        self.lambda_sparse = float(cfg["lambda_sparse"])

    def video_scores(self, scores: Tensor, mask: Tensor) -> Tensor:
        return losses.topk_mean(scores, mask, 1)  # the bag maximum

    def objective(self, batch: Batch) -> Objective:
        labels = require_labels(batch, "mil_ranking")
        abnormal, normal = split_pairs(labels)
        scores = self(batch.x, batch.mask)
        bag_max = self.video_scores(scores, batch.mask)
        hinge = losses.ranking_hinge(bag_max[abnormal], bag_max[normal])
        # Sultani et al. regularise abnormal bags only: normal videos are normal throughout.
        smooth = losses.smoothness(scores[abnormal], batch.mask[abnormal])
        sparse = losses.sparsity(scores[abnormal], batch.mask[abnormal])
        pair_loss = hinge + self.lambda_smooth * smooth + self.lambda_sparse * sparse
        # A pair holds two samples: each synthetic member scales it by alpha (Eq. 6 per sample).
        n_synthetic = batch.is_synthetic[abnormal].long() + batch.is_synthetic[normal].long()
        parts = {"hinge": hinge.mean(), "smoothness": smooth.mean(), "sparsity": sparse.mean()}
        return Objective(pair_loss, n_synthetic, pair_loss.new_zeros(()), parts)


class FeatureAutoencoder(nn.Module):
    """LBR-SPR at feature level: reconstruct unlabeled segments; the error is the anomaly.

    Scores map the error to (0, 1) with a logistic on log error, calibrated on held-out
    segments (validation split, highest `drop_max` fraction trimmed) so that 0.5 sits at
    their `alarm_quantile` (the false-alarm metric thresholds at 0.5). The map is
    monotone, so AUC and AP see the raw error ranking.
    """

    supervision = "none"

    def __init__(self, dim: int, cfg: dict) -> None:
        super().__init__()
        hidden, bottleneck = int(cfg["hidden"]), int(cfg["bottleneck"])
        dropout = float(cfg["dropout"])
        self.norm = Standardize(dim)
        self.encoder = nn.Sequential(
            nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, bottleneck)
        )
        self.decoder = nn.Sequential(
            nn.Linear(bottleneck, hidden), nn.ReLU(), nn.Linear(hidden, dim)
        )
        self.alarm_quantile = float(cfg["alarm_quantile"])
        self.register_buffer("log_threshold", torch.zeros(()))
        self.register_buffer("log_scale", torch.ones(()))

    def errors(self, x: Tensor) -> Tensor:
        """Reconstruction error per segment in standardised units: [..., D] -> [...]."""
        target = self.norm(x)
        return losses.reconstruction_error(target, self.decoder(self.encoder(target)))

    @torch.no_grad()
    def calibrate(self, kept_errors: Tensor) -> None:
        log_error = kept_errors.clamp_min(1e-12).log()
        self.log_threshold.copy_(torch.quantile(log_error, self.alarm_quantile))
        self.log_scale.copy_(log_error.std().clamp_min(1e-6))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        log_error = self.errors(x).clamp_min(1e-12).log()
        scores = torch.sigmoid((log_error - self.log_threshold) / self.log_scale)
        return scores * mask.to(scores.dtype)

    def video_scores(self, scores: Tensor, mask: Tensor) -> Tensor:
        return losses.topk_mean(scores, mask, 1)

"""Detectors mapping segment features [B, T, D] to segment anomaly scores [B, T] in (0, 1)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn


class Standardize(nn.Module):
    """Per-dimension z-score with statistics of the training segments, saved with the model.

    CLIP embeddings vary in a narrow band around a large common mean (random weights
    even more so); centring and scaling lets the MLP see that variation at all.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    @torch.no_grad()
    def fit(self, features: Tensor) -> None:
        """Set the statistics from training segments [N, D]."""
        self.mean.copy_(features.mean(dim=0))
        self.std.copy_(features.std(dim=0).clamp_min(1e-6))

    def forward(self, features: Tensor) -> Tensor:
        return (features - self.mean) / self.std


class TopKMIL(nn.Module):
    """Per-segment MLP D -> hidden -> hidden/4 -> 1 with a sigmoid, trained via top-k MIL."""

    def __init__(self, dim: int, hidden: int = 128, dropout: float = 0.3) -> None:
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

    def forward(self, features: Tensor, mask: Tensor | None = None) -> Tensor:
        scores = torch.sigmoid(self.net(self.norm(features)).squeeze(-1))
        # Padded segments score 0 so nothing downstream can mistake them for evidence.
        return scores if mask is None else scores * mask.to(scores.dtype)


def _topk_mil(dim: int, cfg: dict) -> nn.Module:
    return TopKMIL(dim, hidden=int(cfg.get("hidden", 128)), dropout=float(cfg.get("dropout", 0.3)))


# name -> builder(dim, cfg); new detectors register here.
DETECTORS: dict[str, Callable[[int, dict], nn.Module]] = {"topk_mil": _topk_mil}


def build_detector(name: str, dim: int, cfg: dict) -> nn.Module:
    """Instantiate the detector registered under `name` for `dim`-dimensional features."""
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; valid: {sorted(DETECTORS)}")
    return DETECTORS[name](dim, cfg)

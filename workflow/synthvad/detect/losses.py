"""Losses as pure functions of tensors (GV-VAD Sec. II-B/II-C, Sultani et al. 2018)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def topk_mean(scores: Tensor, mask: Tensor, k: int) -> Tensor:
    """Mean of the top-min(k, valid length) valid segment scores per video: [B, T] -> [B]."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    mask = mask.bool()
    valid = mask.sum(dim=1)
    if bool((valid == 0).any()):
        raise ValueError("a video has no valid segment")
    k_eff = valid.clamp(max=k)
    # Padding can never be among the top k: it sorts below every valid score.
    masked = scores.masked_fill(~mask, float("-inf"))
    top, _ = masked.topk(min(k, scores.shape[1]), dim=1)
    rank = torch.arange(top.shape[1], device=scores.device).unsqueeze(0)
    keep = rank < k_eff.unsqueeze(1)
    return torch.where(keep, top, torch.zeros_like(top)).sum(dim=1) / k_eff.to(scores.dtype)


def topk_bce(video_scores: Tensor, labels: Tensor) -> Tensor:
    """Per-sample BCE of the top-k video score against the video label: [B] -> [B]."""
    # GV-VAD Eq. 8: l_i = -(y_i log p_i + (1 - y_i) log(1 - p_i)), p_i = top-k mean.
    return F.binary_cross_entropy(video_scores, labels.to(video_scores.dtype), reduction="none")


def scale_synthetic(per_sample_loss: Tensor, is_synthetic: Tensor, alpha: float | Tensor) -> Tensor:
    """Synthetic sample loss scaling: alpha multiplies only synthetic samples' losses."""
    # GV-VAD Eq. 6: l'_i = alpha^{s_i} * l_i, s_i = 1 synthetic, 0 real.
    return torch.where(is_synthetic.bool(), alpha * per_sample_loss, per_sample_loss)


def total_loss(scaled: Tensor) -> Tensor:
    """Batch objective from the scaled per-sample losses: [B] -> scalar."""
    # GV-VAD Eq. 7: sum_i l'_i; divided by B so the learning rate does not depend on batch size.
    return scaled.sum() / scaled.shape[0]


def smoothness(scores: Tensor, mask: Tensor) -> Tensor:
    """Temporal smoothness per video: sum of squared differences of valid neighbours: [B]."""
    # Sultani et al. 2018, Eq. 3 (lambda_1 term): sum_i (f(v_i) - f(v_{i+1}))^2.
    mask = mask.bool()
    pair = mask[:, 1:] & mask[:, :-1]
    diff = (scores[:, 1:] - scores[:, :-1]) ** 2
    return torch.where(pair, diff, torch.zeros_like(diff)).sum(dim=1)


def sparsity(scores: Tensor, mask: Tensor) -> Tensor:
    """Sparsity per video: sum of valid segment scores: [B]."""
    # Sultani et al. 2018, Eq. 3 (lambda_2 term): sum_i f(v_i).
    return torch.where(mask.bool(), scores, torch.zeros_like(scores)).sum(dim=1)

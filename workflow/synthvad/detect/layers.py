"""Building blocks shared by the detectors: input standardisation, gradient reversal,
global/local multi-head self-attention, memory units."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class Standardize(nn.Module):
    """Per-dimension z-score with statistics of the training segments, saved with the model.

    CLIP embeddings vary in a narrow band around a large common mean (random weights
    even more so); centring and scaling lets the detector see that variation at all.
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

    @torch.no_grad()
    def fit_moments(self, mean: Tensor, std: Tensor) -> None:
        """Set the statistics from precomputed moments (a data set too big to stack)."""
        self.mean.copy_(mean.to(self.mean.dtype))
        self.std.copy_(std.to(self.std.dtype).clamp_min(1e-6))

    def forward(self, features: Tensor) -> Tensor:
        return (features - self.mean) / self.std


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, strength: float) -> Tensor:
        ctx.strength = strength
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        return -ctx.strength * grad, None


def reverse_gradient(x: Tensor, strength: float) -> Tensor:
    """Identity forward; backward multiplies the gradient by -strength (PA-VAD G_lambda_da)."""
    return _ReverseGradient.apply(x, strength)


class MemoryUnit(nn.Module):
    """K learnable prototypes; reading gives per-slot attention and a memory-augmented feature."""

    def __init__(self, slots: int, dim: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(dim)  # UR-DMU's initialisation
        self.memory = nn.Parameter(torch.empty(slots, dim).uniform_(-bound, bound))
        self.top = slots // 16 + 1  # slots averaged into one segment's memory score

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x [B, T, d] -> (memory score [B, T] in (0, 1), augmentation [B, T, d])."""
        attention = torch.sigmoid(x @ self.memory.T / math.sqrt(x.shape[-1]))  # [B, T, K]
        score = attention.topk(min(self.top, attention.shape[-1]), dim=-1).values.mean(dim=-1)
        return score, attention @ self.memory

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


def global_local_mask(mask: Tensor, heads: int, window: int) -> Tensor:
    """Blocked-attention mask [B * heads, T, T] (True = blocked) for nn.MultiheadAttention.

    The first heads // 2 heads see every valid segment (global), the others only valid
    segments within `window` positions (local). Every query may attend to itself, so a
    padded query row never has all keys blocked (which would give NaN).
    """
    batch, length = mask.shape
    position = torch.arange(length, device=mask.device)
    near = (position[:, None] - position[None, :]).abs() <= window
    itself = torch.eye(length, dtype=torch.bool, device=mask.device)
    keys = mask.bool()[:, None, :].expand(batch, length, length)
    allowed_global = keys | itself
    allowed_local = (keys & near) | itself
    n_global = heads // 2
    per_head = torch.stack(
        [allowed_global] * n_global + [allowed_local] * (heads - n_global), dim=1
    )  # [B, heads, T, T]
    return ~per_head.reshape(batch * heads, length, length)


class GlobalLocalBlock(nn.Module):
    """Pre-norm transformer block with global and local attention heads (UR-DMU's GL-MHSA)."""

    def __init__(self, dim: int, heads: int, window: int, dropout: float) -> None:
        super().__init__()
        if heads < 2 or dim % heads:
            raise ValueError(f"heads must be >= 2 and divide dim {dim}, got {heads}")
        self.heads, self.window = heads, window
        self.norm_attention = nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm_feedforward = nn.LayerNorm(dim)
        self.feedforward = nn.Sequential(
            nn.Linear(dim, dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(dim, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: Tensor, blocked: Tensor) -> Tensor:
        h = self.norm_attention(x)
        x = x + self.attention(h, h, h, attn_mask=blocked, need_weights=False)[0]
        return x + self.feedforward(self.norm_feedforward(x))


class MemoryUnit(nn.Module):
    """K learnable prototypes; reading gives per-slot attention and a memory-augmented feature."""

    def __init__(self, slots: int, dim: int) -> None:
        super().__init__()
        self.memory = nn.Parameter(torch.randn(slots, dim) / math.sqrt(dim))
        self.top = slots // 16 + 1  # slots averaged into one segment's memory score

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x [B, T, d] -> (memory score [B, T] in (0, 1), augmentation [B, T, d])."""
        attention = torch.sigmoid(x @ self.memory.T / math.sqrt(x.shape[-1]))  # [B, T, K]
        score = attention.topk(min(self.top, attention.shape[-1]), dim=-1).values.mean(dim=-1)
        return score, attention @ self.memory

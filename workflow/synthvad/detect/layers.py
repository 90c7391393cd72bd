"""Building blocks shared by the detectors: input standardisation, gradient reversal,
memory units, length-grouped scoring of sequence models, released checkpoints."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

SCORE_SEGMENTS = 8192  # segments a sequence model scores per forward pass: bounds memory


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


def score_by_length(
    score_rows: Callable[..., Tensor], x: Tensor, mask: Tensor, extra: Tensor | None = None
) -> Tensor:
    """Segment scores [B, T] of a sequence model (attention, temporal convolutions) whose
    output would change with padding: rows of one valid length are scored together,
    unpadded, at most SCORE_SEGMENTS segments at a time (a long video's crops one by one).
    `extra` ([B, T, E], e.g. captions) is cut the same way and passed along."""
    lengths = mask.sum(dim=1)
    scores = x.new_zeros(mask.shape)
    for length in lengths.unique().tolist():
        rows = torch.where(lengths == length)[0]
        for part in rows.split(max(1, SCORE_SEGMENTS // length)):
            args = (
                (x[part, :length],) if extra is None else (x[part, :length], extra[part, :length])
            )
            scores[part, :length] = score_rows(*args)
    return scores


def load_official_state(path: str, model: str, standardize: bool) -> dict[str, Tensor]:
    """A released checkpoint (a state dict saved with torch.save) for `init_from`."""
    if standardize:
        raise ValueError(
            f"init_from: the released {model} sees raw features; set standardize: false"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"detector key 'init_from': no file {path}") from None

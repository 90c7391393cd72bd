"""Loss terms as pure functions of tensors, each with the equation it implements.

Papers: GV-VAD (papers/gv-vad.txt), PA-VAD (papers/pa-vad.txt), LBR-SPR
(papers/lbr-spr-uvad.txt), Sultani et al. CVPR 2018 and UR-DMU (Zhou et al. AAAI 2023)
as PA-VAD Sec. 3.2 describes it. Shapes: B videos, T segments, D or d feature sizes,
K memory slots; `mask` [B, T] marks valid (unpadded) segments.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _per_row_k(k: int | Tensor, valid: Tensor) -> Tensor:
    k = torch.as_tensor(k, device=valid.device)
    if bool((k < 1).any()):
        raise ValueError(f"k must be at least 1, got {k.tolist()}")
    return torch.minimum(k.expand_as(valid), valid)


def topk_select(values: Tensor, mask: Tensor, k: int | Tensor) -> Tensor:
    """Bool [B, T]: the top-min(k, valid length) valid positions of each row.

    `k` is one int or one per row ([B]); padding is never selected.
    """
    mask = mask.bool()
    valid = mask.sum(dim=1)
    if bool((valid == 0).any()):
        raise ValueError("a video has no valid segment")
    k_eff = _per_row_k(k, valid)
    # Padding sorts below every valid value, so it is never among the first k_eff.
    order = values.masked_fill(~mask, float("-inf")).argsort(dim=1, descending=True, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(values.shape[1], device=values.device).expand_as(order))
    return (rank < k_eff.unsqueeze(1)) & mask


def masked_mean(values: Tensor, select: Tensor) -> Tensor:
    """Mean over dim 1 of `values` [B, T] or [B, T, d] where `select` [B, T] is true."""
    weight = select.to(values.dtype)
    if values.dim() == 3:
        weight = weight.unsqueeze(-1)
    return (values * weight).sum(dim=1) / weight.sum(dim=1).clamp_min(1.0)


def topk_mean(scores: Tensor, mask: Tensor, k: int | Tensor) -> Tensor:
    """Video score: mean of the top-min(k, valid length) valid segment scores, [B, T] -> [B]."""
    # GV-VAD Eq. 8: p_i = mean of the k highest segment scores of video i.
    return masked_mean(scores, topk_select(scores.detach(), mask, k))


def topk_bce(video_scores: Tensor, labels: Tensor) -> Tensor:
    """Per-sample BCE of the video score against the video label: [B] -> [B]."""
    # GV-VAD Eq. 8: l_i = -(y_i log p_i + (1 - y_i) log(1 - p_i)).
    return F.binary_cross_entropy(video_scores, labels.to(video_scores.dtype), reduction="none")


def ranking_hinge(abnormal_max: Tensor, normal_max: Tensor, margin: float = 1.0) -> Tensor:
    """MIL ranking hinge per (abnormal, normal) pair of bag maxima: [P], [P] -> [P]."""
    # PA-VAD Eq. 1 (Sultani et al.): max(0, 1 - max_{i in B_a} s_a^i + max_{i in B_n} s_n^i).
    return F.relu(margin - abnormal_max + normal_max)


def smoothness(scores: Tensor, mask: Tensor) -> Tensor:
    """Temporal smoothness per video: sum of squared differences of valid neighbours: [B]."""
    # Sultani et al. 2018 Eq. 7, lambda_1 term: sum_i (f(v_i) - f(v_{i+1}))^2.
    mask = mask.bool()
    pair = mask[:, 1:] & mask[:, :-1]
    diff = (scores[:, 1:] - scores[:, :-1]) ** 2
    return torch.where(pair, diff, torch.zeros_like(diff)).sum(dim=1)


def sparsity(scores: Tensor, mask: Tensor) -> Tensor:
    """Sparsity per video: sum of valid segment scores: [B]."""
    # Sultani et al. 2018 Eq. 7, lambda_2 term: sum_i f(v_i).
    return torch.where(mask.bool(), scores, torch.zeros_like(scores)).sum(dim=1)


def scale_synthetic(per_sample_loss: Tensor, n_synthetic: Tensor, alpha: float | Tensor) -> Tensor:
    """Synthetic sample loss scaling: each synthetic member multiplies the loss by alpha."""
    # GV-VAD Eq. 6: l'_i = alpha^{s_i} * l_i, s_i = 1 synthetic, 0 real (a pair: 0, 1 or 2).
    alpha = torch.as_tensor(alpha, dtype=per_sample_loss.dtype, device=per_sample_loss.device)
    return alpha ** n_synthetic.to(per_sample_loss.dtype) * per_sample_loss


def total_loss(scaled: Tensor) -> Tensor:
    """Batch objective from the scaled per-sample losses: [B] -> scalar."""
    # GV-VAD Eq. 7: sum_i l'_i; divided by B so the learning rate does not depend on batch size.
    return scaled.sum() / scaled.shape[0]


def alpha_objective(alpha: Tensor, real_mean_loss: Tensor, synthetic_mean_loss: Tensor) -> Tensor:
    """Objective of a learnable SSLS alpha, minimised at alpha = real / synthetic mean loss.

    Minimising Eq. 7 itself over alpha has the trivial solution alpha -> 0 (the loss is
    non-negative, so ignoring synthetic samples always lowers it). A log barrier weighted by
    the real loss makes alpha track how much harder synthetic samples are than real ones:
    d/d alpha (alpha * L_syn - L_real * log alpha) = 0  <=>  alpha = L_real / L_syn.
    Both losses are constants here (the caller detaches them).
    """
    # Our regulariser for GV-VAD Table III "Learnable" (the paper does not give its form).
    return alpha * synthetic_mean_loss - real_mean_loss * torch.log(alpha)


def gaussian_kl_over_time(mu: Tensor, logvar: Tensor) -> Tensor:
    """UR-DMU's KL(N(mu, exp(logvar)) || N(0, 1)) as released: summed over time, averaged
    over features, per video: [B, T, d] -> [B]."""
    # UR-DMU latent_loss: mean_d sum_t -0.5 (1 + log sigma^2 - mu^2 - sigma^2).
    return (-0.5 * (1.0 + logvar - mu.pow(2) - logvar.exp())).sum(dim=1).mean(dim=-1)


def slot_assignment(embeddings: Tensor, memory: Tensor, tau: float) -> Tensor:
    """Soft assignment of abnormal embeddings to abnormal memory slots: [N, d], [K, d] -> [N, K]."""
    # PA-VAD Eq. 10: Q = softmax(Z~ M~_A^T / tau), rows of Z and M l2-normalised.
    z = F.normalize(embeddings, dim=-1)
    m = F.normalize(memory, dim=-1)
    return torch.softmax(z @ m.T / tau, dim=-1)


def slot_usage(assignment: Tensor) -> Tensor:
    """Mean assignment per slot: [N, K] -> [K] (sums to 1)."""
    # PA-VAD Eq. 11: u = (1 / (B_a T)) 1^T Q.
    return assignment.mean(dim=0)


def slot_centers(assignment: Tensor, embeddings: Tensor) -> Tensor:
    """Responsibility-weighted center of each slot: [N, K], [N, d] -> [K, d]."""
    # PA-VAD, below Eq. 12: mu_k = (sum_n Q_nk Z_n) / (sum_n Q_nk).
    return (assignment.T @ embeddings) / assignment.sum(dim=0).clamp_min(1e-12).unsqueeze(1)


def usage_weights(usage: Tensor, beta: float, eps: float) -> Tensor:
    """Per-slot weight (u_bar / (u_k + eps))^beta: larger for less used slots: [K] -> [K]."""
    # PA-VAD Eq. 13, the factor of each slot's pull.
    return (usage.mean() / (usage + eps)) ** beta


def usage_update_loss(memory: Tensor, centers: Tensor, weights: Tensor) -> Tensor:
    """Usage-aware memory update: weighted squared distance of slots to centers -> scalar."""
    # PA-VAD Eq. 13: (1/K) sum_k w_k ||m_k - mu_k||^2.
    return (weights * (memory - centers).pow(2).sum(dim=-1)).mean()


def domain_alignment_loss(
    logits_real: Tensor,
    logits_pseudo: Tensor,
    mean_real: Tensor,
    mean_pseudo: Tensor,
    lambda_dist: float,
) -> Tensor:
    """Discriminator BCE on both normal streams plus their squared mean distance -> scalar.

    `logits_*` are discriminator outputs for gradient-reversed mean-pooled features of real
    normal (domain label 0) and pseudo-normal (label 1) videos; `mean_*` are the streams'
    mean features [d].
    """
    # PA-VAD Eq. 12: BCE(D(G(f_N)), y_N) + BCE(D(G(f_N~)), y_N~) + lambda_dist ||f_N - f_N~||^2.
    real = F.binary_cross_entropy_with_logits(logits_real, torch.zeros_like(logits_real))
    pseudo = F.binary_cross_entropy_with_logits(logits_pseudo, torch.ones_like(logits_pseudo))
    return real + pseudo + lambda_dist * (mean_real - mean_pseudo).pow(2).sum()


def reconstruction_error(features: Tensor, reconstruction: Tensor) -> Tensor:
    """Mean squared reconstruction error over the feature dim: [..., D] -> [...]."""
    # LBR-SPR: the reconstruction loss, low for normal events ("normality advantage").
    return (features - reconstruction).pow(2).mean(dim=-1)


def self_paced_keep(errors: Tensor, drop_fraction: float) -> Tensor:
    """Bool mask keeping all but the `drop_fraction` highest-error samples: [N] -> [N]."""
    # LBR-SPR self-paced refinement: drop the highest-loss samples from training.
    if not 0.0 <= drop_fraction < 1.0:
        raise ValueError(f"drop_fraction must be in [0, 1), got {drop_fraction}")
    n_drop = int(drop_fraction * errors.numel())
    keep = torch.ones_like(errors, dtype=torch.bool)
    if n_drop:
        keep[errors.argsort(descending=True, stable=True)[:n_drop]] = False
    return keep

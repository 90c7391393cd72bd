"""UR-DMU (Zhou et al., AAAI 2023) as PA-VAD Sec. 3.2 describes it, and PA-VAD's DARM on top.

UR-DMU: temporal convolution + global/local multi-head self-attention encoder (Eq. 8),
normal and abnormal memory banks whose readings augment the embedding (Eq. 9), a
Gaussian (mean and variance heads) over normal-memory readings with a KL term, a triplet
that separates normal from abnormal embeddings, and top-k MIL BCE.
DARM adds domain alignment of real-normal and pseudo-normal streams through gradient
reversal (Eq. 12) and the usage-aware update of abnormal memory slots (Eq. 10, 11, 13),
combined as Eq. 14.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from synthvad.detect import losses
from synthvad.detect.data import Batch
from synthvad.detect.layers import (
    GlobalLocalBlock,
    MemoryUnit,
    Standardize,
    global_local_mask,
    reverse_gradient,
)
from synthvad.detect.models import Objective, require_labels


def topk_per_video(mask: Tensor) -> Tensor:
    """UR-DMU's k = T // 16 + 1 of each video's valid length T: [B, T] -> [B]."""
    return mask.sum(dim=1) // 16 + 1


class URDMU(nn.Module):
    supervision = "weak"

    def __init__(self, dim: int, cfg: dict) -> None:
        super().__init__()
        width, heads = int(cfg["embed_dim"]), int(cfg["heads"])
        dropout = float(cfg["dropout"])
        self.heads, self.window = heads, int(cfg["local_window"])
        self.norm = Standardize(dim)
        self.temporal = nn.Sequential(nn.Conv1d(dim, width, 3, padding=1), nn.GELU())
        self.blocks = nn.ModuleList(
            GlobalLocalBlock(width, heads, self.window, dropout) for _ in range(int(cfg["layers"]))
        )
        self.memory_abnormal = MemoryUnit(int(cfg["memory_abnormal"]), width)
        self.memory_normal = MemoryUnit(int(cfg["memory_normal"]), width)
        self.mean_head = nn.Linear(width, width)
        self.logvar_head = nn.Linear(width, width)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * width, 1)
        self.lambda_memory = float(cfg["lambda_memory"])
        self.lambda_triplet = float(cfg["lambda_triplet"])
        self.lambda_kl = float(cfg["lambda_kl"])
        self.margin = float(cfg["triplet_margin"])

    def encode(self, x: Tensor, mask: Tensor) -> Tensor:
        """Eq. 8: f~ = SelfAttn(Temporal(f)), [B, T, D] -> [B, T, d]."""
        # Zero padding after standardising, as the convolution's own padding is zeros.
        h = self.norm(x) * mask.unsqueeze(-1).to(x.dtype)
        h = self.temporal(h.transpose(1, 2)).transpose(1, 2)
        blocked = global_local_mask(mask, self.heads, self.window)
        for block in self.blocks:
            h = block(h, blocked)
        return h

    def _heads(self, x: Tensor, mask: Tensor) -> dict[str, Tensor]:
        f = self.encode(x, mask)
        abnormal_score, abnormal_aug = self.memory_abnormal(f)
        normal_score, normal_aug = self.memory_normal(f)
        # Eq. 9: a^ = sigmoid(W [f~; h_A(f~) + h_N(f~)] + b).
        joint = self.dropout(torch.cat([f, abnormal_aug + normal_aug], dim=-1))
        scores = torch.sigmoid(self.head(joint).squeeze(-1)) * mask.to(f.dtype)
        return {
            "f": f,
            "scores": scores,
            "abnormal_score": abnormal_score,
            "normal_score": normal_score,
            "normal_aug": normal_aug,
        }

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return self._heads(x, mask)["scores"]

    def video_scores(self, scores: Tensor, mask: Tensor) -> Tensor:
        return losses.topk_mean(scores, mask, topk_per_video(mask))

    def _urdmu_objective(self, batch: Batch) -> tuple[Objective, dict[str, Tensor]]:
        labels = require_labels(batch, type(self).__name__.lower())
        mask = batch.mask
        out = self._heads(batch.x, mask)
        k = topk_per_video(mask)
        abnormal = labels == 1
        mil = losses.topk_bce(losses.topk_mean(out["scores"], mask, k), labels)

        # Memories: on abnormal videos the abnormal memory fires on the top-k segments and
        # the normal memory misses some; on normal videos the normal memory recognises every
        # segment and the abnormal memory none.
        a_score, n_score = out["abnormal_score"], out["normal_score"]
        ones = torch.ones_like(labels)
        on_abnormal = losses.topk_bce(losses.topk_mean(a_score, mask, k), ones) + losses.topk_bce(
            losses.topk_mean(1.0 - n_score, mask, k), ones
        )
        per_segment = F.binary_cross_entropy(
            n_score, torch.ones_like(n_score), reduction="none"
        ) + F.binary_cross_entropy(a_score, torch.zeros_like(a_score), reduction="none")
        on_normal = losses.masked_mean(per_segment, mask)
        memory = torch.where(abnormal, on_abnormal, on_normal)

        # Uncertainty: normal-memory readings as a Gaussian, kept near N(0, I) on normal videos.
        mean, logvar = self.mean_head(out["normal_aug"]), self.logvar_head(out["normal_aug"])
        kl = torch.where(abnormal, 0.0, losses.masked_mean(losses.gaussian_kl(mean, logvar), mask))
        z = mean + torch.randn_like(mean) * (0.5 * logvar).exp() if self.training else mean

        # Triplet, owned by each abnormal video: its least abnormal segments (positive) near
        # the normal videos' embedding (anchor), its most abnormal ones (negative) far from it.
        triplet = torch.zeros_like(mil)
        if bool(abnormal.any()) and bool((~abnormal).any()):
            anchor = losses.masked_mean(z[~abnormal], mask[~abnormal]).mean(dim=0)
            guide, valid, k_a = a_score[abnormal].detach(), mask[abnormal], k[abnormal]
            positive = losses.masked_mean(z[abnormal], losses.topk_select(-guide, valid, k_a))
            negative = losses.masked_mean(z[abnormal], losses.topk_select(guide, valid, k_a))
            triplet[abnormal] = losses.triplet(
                anchor.expand_as(positive), positive, negative, self.margin
            )

        per_sample = (
            mil + self.lambda_memory * memory + self.lambda_triplet * triplet + self.lambda_kl * kl
        )
        parts = {
            "mil": mil.mean(),
            "memory": memory.mean(),
            "triplet": triplet.mean(),
            "kl": kl.mean(),
        }
        objective = Objective(
            per_sample, batch.is_synthetic.long(), per_sample.new_zeros(()), parts
        )
        return objective, out

    def objective(self, batch: Batch) -> Objective:
        return self._urdmu_objective(batch)[0]


class DARM(URDMU):
    """UR-DMU + domain alignment (Eq. 12) + usage-aware memory update (Eq. 13), as Eq. 14."""

    def __init__(self, dim: int, cfg: dict) -> None:
        super().__init__(dim, cfg)
        width = int(cfg["embed_dim"])
        self.discriminator = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 1))
        self.lambda_1 = float(cfg["lambda_1"])
        self.lambda_2 = float(cfg["lambda_2"])
        self.lambda_da = float(cfg["lambda_da"])
        self.lambda_dist = float(cfg["lambda_dist"])
        self.beta = float(cfg["beta"])
        self.tau = float(cfg["tau"])
        self.eps = float(cfg["eps"])

    def domain_alignment(
        self, f: Tensor, mask: Tensor, labels: Tensor, synthetic: Tensor
    ) -> Tensor:
        """Eq. 12 on mean-pooled embeddings of the batch's real and pseudo-normal videos."""
        real = (labels == 0) & ~synthetic
        pseudo = (labels == 0) & synthetic
        if not (bool(real.any()) and bool(pseudo.any())):
            return f.new_zeros(())  # a batch without both streams has nothing to align
        pooled = losses.masked_mean(f, mask)
        logits = self.discriminator(reverse_gradient(pooled, self.lambda_da)).squeeze(-1)
        return losses.domain_alignment_loss(
            logits[real],
            logits[pseudo],
            pooled[real].mean(dim=0),
            pooled[pseudo].mean(dim=0),
            self.lambda_dist,
        )

    def usage_update(self, f: Tensor, mask: Tensor, labels: Tensor) -> Tensor:
        """Eq. 10, 11, 13: pull rarely used abnormal slots toward their assigned embeddings."""
        embeddings = f[(labels == 1).unsqueeze(1) & mask]  # Z: [B_a T, d]
        if embeddings.numel() == 0:
            return f.new_zeros(())
        memory = self.memory_abnormal.memory
        # Assignment, usage and centers are targets: only the slots move (Eq. 13's m_k).
        with torch.no_grad():
            assignment = losses.slot_assignment(embeddings, memory, self.tau)
            centers = losses.slot_centers(assignment, embeddings)
            weights = losses.usage_weights(losses.slot_usage(assignment), self.beta, self.eps)
        return losses.usage_update_loss(memory, centers, weights)

    def objective(self, batch: Batch) -> Objective:
        objective, out = self._urdmu_objective(batch)
        labels = require_labels(batch, "darm")
        zero = objective.per_sample.new_zeros(())
        da = (
            self.domain_alignment(out["f"], batch.mask, labels, batch.is_synthetic)
            if self.lambda_1
            else zero
        )
        upd = self.usage_update(out["f"], batch.mask, labels) if self.lambda_2 else zero
        # Eq. 14: L = L_UR-DMU + lambda_1 L_DA + lambda_2 L_upd. The DARM terms act on whole
        # streams, not on samples, so synthetic sample loss scaling does not weight them.
        objective.regularizer = self.lambda_1 * da + self.lambda_2 * upd
        objective.parts.update(domain_alignment=da.detach(), usage_update=upd.detach())
        return objective

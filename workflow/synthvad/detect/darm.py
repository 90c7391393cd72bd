"""PA-VAD's DARM: UR-DMU (urdmu.py) trained with two more terms, Eq. 10-14.

- Slot assignment and usage (Eq. 10-11): abnormal embeddings softly assigned to the
  abnormal memory's slots; a slot's usage is its mean assignment.
- Domain alignment (Eq. 12): a discriminator behind gradient reversal tells mean-pooled
  embeddings of real normal videos from pseudo-normal (synthetic) ones, plus the squared
  distance of the two streams' means.
- Usage-aware slot update (Eq. 13): rarely used slots are pulled harder toward the
  embeddings assigned to them.
- Loss (Eq. 14): L_UR-DMU + lambda_1 L_DA + lambda_2 L_upd.

The loss functions themselves are in losses.py; this module wires them to the model.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from synthvad.detect import losses
from synthvad.detect.data import Batch
from synthvad.detect.layers import reverse_gradient
from synthvad.detect.models import Objective, require_labels
from synthvad.detect.urdmu import URDMU


class DARM(URDMU):
    """UR-DMU + domain alignment (Eq. 12) + usage-aware memory update (Eq. 13), as Eq. 14."""

    not_released = ("discriminator.",)  # released UR-DMU checkpoints have no discriminator

    def __init__(self, dim: int, cfg: dict) -> None:
        super().__init__(dim, cfg)
        width = int(cfg["embed_dim"])
        self.discriminator = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 1))
        # Eq. 14's term weights; Eq. 12's reversal strength and distance weight; Eq. 10/13's
        # assignment temperature, usage exponent and usage epsilon.
        self.lambda_1, self.lambda_2 = float(cfg["lambda_1"]), float(cfg["lambda_2"])
        self.lambda_da, self.lambda_dist = float(cfg["lambda_da"]), float(cfg["lambda_dist"])
        self.tau, self.beta, self.eps = float(cfg["tau"]), float(cfg["beta"]), float(cfg["eps"])

    def domain_alignment(self, f: Tensor, labels: Tensor, synthetic: Tensor) -> Tensor:
        """Eq. 12 on mean-pooled embeddings of the batch's real and pseudo-normal videos."""
        real = (labels == 0) & ~synthetic
        pseudo = (labels == 0) & synthetic
        if not (bool(real.any()) and bool(pseudo.any())):
            return f.new_zeros(())  # a batch without both streams has nothing to align
        pooled = f.mean(dim=1)
        logits = self.discriminator(reverse_gradient(pooled, self.lambda_da)).squeeze(-1)
        return losses.domain_alignment_loss(
            logits[real],
            logits[pseudo],
            pooled[real].mean(dim=0),
            pooled[pseudo].mean(dim=0),
            self.lambda_dist,
        )

    def usage_update(self, f: Tensor, labels: Tensor) -> Tensor:
        """Eq. 10, 11, 13: pull rarely used abnormal slots toward their assigned embeddings."""
        embeddings = f[labels == 1].flatten(0, 1)  # Z: [B_a T, d]
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
        da = self.domain_alignment(out["f"], labels, batch.is_synthetic) if self.lambda_1 else zero
        upd = self.usage_update(out["f"], labels) if self.lambda_2 else zero
        # Eq. 14: L = L_UR-DMU + lambda_1 L_DA + lambda_2 L_upd. The DARM terms act on whole
        # streams, not on samples, so synthetic sample loss scaling does not weight them.
        objective.regularizer = self.lambda_1 * da + self.lambda_2 * upd
        objective.parts.update(domain_alignment=da.detach(), usage_update=upd.detach())
        return objective

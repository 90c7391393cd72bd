"""UR-DMU (Zhou et al., AAAI 2023) as its authors released it (PA-VAD's DARM: darm.py).

The architecture, losses and test path follow the released code (henrryzh1/UR-DMU:
model.py WSAD, translayer.py, memory.py, train.py AD_Loss); tests/test_urdmu_parity.py
loads the official state dict through `OFFICIAL_KEYS` and reproduces its outputs and every
loss term to 1e-5 (fixture made by tests/fixtures/make_urdmu_fixture.py).

- Encoder: a width-d temporal convolution (kernel 3) + ReLU, then `layers` pre-norm blocks
  whose attention has, per head, a learned softmax attention over all segments beside a
  fixed distance kernel exp(-|i - j| / e) (normalised by its column sums, as released),
  the two readings concatenated and projected; a GELU feed-forward after each.
- Memories: abnormal and normal prototype banks read with sigmoid(f M^T / sqrt(d)).
- Classifier: MLP [f; mu(A-reading) + N-reading term] -> 128 -> 1, sigmoid, where for
  normal training videos the normal-memory reading is a reparameterised sample
  (mean and log-variance heads) and otherwise its mean.
- Loss (train.py): top-k BCE (k = T // 16 + 1) + 0.1 (memory BCEs) + 0.1 triplet on
  L2-normalised top-k segments + 0.001 KL (summed over time) + 1e-4 distance
  relu(100 - ||abnormal mean readout|| + ||normal sampled readout||).

synthvad differences, on purpose: inputs may be standardised (`standardize`, off by
default, as released); the loss is returned per video for synthetic sample loss scaling
(the pair terms, triplet and distance, belong to the abnormal video of each pair); model
selection uses the validation split, not the test set. Training batches hold normal then
abnormal videos of one fixed length (`fixed_length`: every video resampled to
detect.train_segments, short ones stretched, as the official loader does); videos of
other lengths are scored one length at a time, never padded.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from synthvad.detect import losses
from synthvad.detect.data import Batch
from synthvad.detect.layers import (
    MemoryUnit,
    Standardize,
    load_official_state,
    score_by_length,
)
from synthvad.detect.models import Objective, require_labels

# Official WSAD state-dict key (prefix) -> synthvad URDMU key (prefix); `{i}` is a layer.
OFFICIAL_KEYS = {
    "embedding.conv_1.0.": "temporal.",
    "selfatt.layers.{i}.0.norm.": "blocks.{i}.attention_norm.",
    "selfatt.layers.{i}.0.fn.to_qkv.": "blocks.{i}.attention.qkvt.",
    "selfatt.layers.{i}.0.fn.to_out.0.": "blocks.{i}.attention.out.",
    "selfatt.layers.{i}.1.norm.": "blocks.{i}.feedforward_norm.",
    "selfatt.layers.{i}.1.fn.net.": "blocks.{i}.feedforward.",
    "Amemory.memory_block": "memory_abnormal.memory",
    "Nmemory.memory_block": "memory_normal.memory",
    "encoder_mu.0.": "mean_head.",
    "encoder_var.0.": "logvar_head.",
    "cls_head.mlp.": "classifier.",
}


def from_official(state: dict[str, Tensor], layers: int) -> dict[str, Tensor]:
    """An official WSAD state dict with synthvad's key names, plus the identity
    standardisation (the released model sees raw features)."""
    renames = [
        (old.format(i=i), new.format(i=i))
        for old, new in OFFICIAL_KEYS.items()
        for i in (range(layers) if "{i}" in old else [0])
    ]
    out = {}
    for key, value in state.items():
        for old, new in renames:
            if key.startswith(old):
                out[new + key[len(old) :]] = value
                break
        else:
            raise KeyError(f"official UR-DMU key {key!r} has no synthvad name")
    dim = out["temporal.weight"].shape[1]
    out.update({"norm.mean": torch.zeros(dim), "norm.std": torch.ones(dim)})
    return out


def topk_count(length: int | Tensor) -> int | Tensor:
    """UR-DMU's k = T // 16 + 1 segments of a T-segment video (or a tensor of lengths)."""
    return length // 16 + 1


# exp(-d / e) < 6e-11 beyond this distance: the band holds the kernel to float32 precision.
KERNEL_BAND = 64


def distance_kernel(n: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """exp(-|i - j| / e) over positions 1..n, each entry divided by its column's sum
    (dense [n, n]: the reference of distance_mix)."""
    position = torch.arange(1, n + 1, device=device, dtype=dtype)
    kernel = torch.exp(-(position[None, :] - position[:, None]).abs() / math.e)
    return kernel / kernel.sum(dim=-1)  # broadcasts over rows: column j / sum of row j


def distance_mix(t: Tensor) -> Tensor:
    """distance_kernel(n) @ t for t [..., n, c], as a banded convolution over time: O(n)
    memory instead of the n x n matrix, so hour-long videos score in bounded memory."""
    n = t.shape[-2]
    band = min(KERNEL_BAND, n - 1)
    offsets = torch.arange(-band, band + 1, device=t.device, dtype=t.dtype)
    weights = torch.exp(-offsets.abs() / math.e).view(1, 1, -1)
    column_sums = F.conv1d(t.new_ones(1, 1, n), weights, padding=band).view(n, 1)
    rows = (t / column_sums).transpose(-1, -2).reshape(-1, 1, n)  # one row per channel
    mixed = F.conv1d(rows, weights, padding=band)  # symmetric kernel: correlation = convolution
    return mixed.view(*t.shape[:-2], t.shape[-1], n).transpose(-1, -2)


class DistanceAttention(nn.Module):
    """Per head: softmax(q k^T / sqrt(d_h)) v beside distance_kernel t, concatenated."""

    def __init__(self, width: int, heads: int, head_dim: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        self.qkvt = nn.Linear(width, 4 * heads * head_dim, bias=False)
        self.out = nn.Linear(2 * heads * head_dim, width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        q, k, v, t = (
            part.view(b, n, self.heads, self.head_dim).transpose(1, 2)
            for part in self.qkvt(x).chunk(4, dim=-1)
        )
        # Fused softmax(q k^T / sqrt(d_h)) v: the same function, without the T x T matrix.
        learned = F.scaled_dot_product_attention(q, k, v)
        local = distance_mix(t)
        out = torch.cat([learned, local], dim=-1).transpose(1, 2).reshape(b, n, -1)
        return self.dropout(self.out(out))


class EncoderBlock(nn.Module):
    """Pre-norm residual attention, then a pre-norm residual GELU feed-forward."""

    def __init__(self, width: int, heads: int, head_dim: int, mlp: int, dropout: float) -> None:
        super().__init__()
        self.attention_norm = nn.LayerNorm(width)
        self.attention = DistanceAttention(width, heads, head_dim, dropout)
        self.feedforward_norm = nn.LayerNorm(width)
        self.feedforward = nn.Sequential(
            nn.Linear(width, mlp),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(mlp, width),
            nn.Dropout(dropout),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attention(self.attention_norm(x))
        return x + self.feedforward(self.feedforward_norm(x))


class URDMU(nn.Module):
    supervision = "weak"
    fixed_length = True  # training videos all resampled to detect.train_segments
    # Key prefixes of a subclass's own layers, which a released checkpoint does not hold.
    not_released: tuple[str, ...] = ()

    def __init__(self, dim: int, cfg: dict) -> None:
        super().__init__()
        width, layers = int(cfg["embed_dim"]), int(cfg["layers"])
        heads, dropout = int(cfg["heads"]), float(cfg["dropout"])
        self.standardize = bool(cfg.get("standardize", False))
        self.norm = Standardize(dim)
        self.temporal = nn.Conv1d(dim, width, 3, padding=1)
        self.blocks = nn.ModuleList(
            EncoderBlock(width, heads, int(cfg["head_dim"]), int(cfg["mlp_dim"]), dropout)
            for _ in range(layers)
        )
        self.memory_abnormal = MemoryUnit(int(cfg["memory_abnormal"]), width)
        self.memory_normal = MemoryUnit(int(cfg["memory_normal"]), width)
        self.mean_head = nn.Linear(width, width)
        self.logvar_head = nn.Linear(width, width)
        hidden = int(cfg["classifier_hidden"])
        self.classifier = nn.Sequential(
            nn.Linear(2 * width, hidden), nn.ReLU(), nn.Linear(hidden, 1), nn.Sigmoid()
        )
        self.lambda_memory = float(cfg["lambda_memory"])
        self.lambda_triplet = float(cfg["lambda_triplet"])
        self.lambda_kl = float(cfg["lambda_kl"])
        self.lambda_distance = float(cfg["lambda_distance"])
        self.triplet_margin = float(cfg["triplet_margin"])
        self.distance_margin = float(cfg["distance_margin"])

    def load_released(self, path: str) -> None:
        """Weights of a released UR-DMU checkpoint (a WSAD state dict saved with
        torch.save, e.g. models/ucf_trans_2022.pkl); layers in `not_released` stay as they are."""
        state = load_official_state(path, "UR-DMU", self.standardize)
        mapped = from_official(state, layers=len(self.blocks))
        missing, unexpected = self.load_state_dict(mapped, strict=False)
        own = [k for k in missing if not k.startswith(self.not_released)]
        if own or unexpected:
            raise ValueError(f"init_from {path}: keys missing {own}, unexpected {unexpected}")

    def encode(self, x: Tensor) -> Tensor:
        """[B, T, D] -> [B, T, d], every segment valid."""
        if self.standardize:
            x = self.norm(x)
        h = F.relu(self.temporal(x.transpose(1, 2))).transpose(1, 2)
        for block in self.blocks:
            h = block(h)
        return h

    def _score(self, x: Tensor) -> Tensor:
        """Test path: segment scores [B, T] of full-length rows."""
        f = self.encode(x)
        _, abnormal = self.memory_abnormal(f)
        _, normal = self.memory_normal(f)
        joint = torch.cat([f, self.mean_head(abnormal) + self.mean_head(normal)], dim=-1)
        return self.classifier(joint).squeeze(-1)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """Segment scores [B, T], unpadded and in bounded chunks (score_by_length)."""
        return score_by_length(self._score, x, mask)

    def video_scores(self, scores: Tensor, mask: Tensor) -> Tensor:
        return losses.topk_mean(scores, mask, topk_count(mask.sum(dim=1)))

    def terms(self, x: Tensor, labels: Tensor, noise: Tensor | None = None) -> dict[str, Tensor]:
        """The released training path on full-length rows: outputs and per-video terms.

        Normal and abnormal videos pair up in order (the released batches: B normal, then
        B abnormal); `noise` is the reparameterisation draw for the normal videos' readings
        (default: standard normal while training, zero in evaluation).
        """
        normal, abnormal = labels == 0, labels == 1
        if not (bool(normal.any()) and bool(abnormal.any())):
            raise ValueError("a UR-DMU batch needs normal and abnormal videos")
        f = self.encode(x)
        t = f.shape[1]
        k = topk_count(t)
        n_f, a_f = f[normal], f[abnormal]
        a_att, a_aug = self.memory_abnormal(a_f)  # abnormal videos, abnormal memory
        na_att, na_aug = self.memory_normal(a_f)  # abnormal videos, normal memory
        an_att, an_aug = self.memory_abnormal(n_f)  # normal videos, abnormal memory
        n_att, n_aug = self.memory_normal(n_f)  # normal videos, normal memory

        pairs = min(len(n_f), len(a_f))
        a_index = a_att.topk(k, dim=-1).indices[:pairs]
        n_index = n_att.topk(k, dim=-1).indices[:pairs]
        p_index = na_att.topk(k, dim=-1).indices[:pairs]
        negative = _gather_mean(a_f[:pairs], a_index)  # most abnormal segments
        anchor = _gather_mean(n_f[:pairs], n_index)  # most normal segments of normal videos
        positive = _gather_mean(a_f[:pairs], p_index)  # most normal segments of abnormal ones
        triplet = F.triplet_margin_loss(
            F.normalize(anchor, dim=-1, eps=0.0),
            F.normalize(positive, dim=-1, eps=0.0),
            F.normalize(negative, dim=-1, eps=0.0),
            margin=self.triplet_margin,
            reduction="none",
        )

        mean, logvar = self.mean_head(n_aug), self.logvar_head(n_aug)
        if noise is None:
            noise = torch.randn_like(mean) if self.training else torch.zeros_like(mean)
        sampled = mean + noise * logvar.exp().sqrt()
        a_mean = self.mean_head(a_aug)
        distance = F.relu(
            self.distance_margin
            - _gather_mean(a_mean[:pairs], a_index).norm(dim=-1)
            + _gather_mean(sampled[:pairs], n_index).norm(dim=-1)
        )
        kl = losses.gaussian_kl_over_time(mean, logvar)

        readout = torch.empty_like(f)
        readout[normal] = sampled + self.mean_head(an_aug)
        readout[abnormal] = a_mean + self.mean_head(na_aug)
        scores = self.classifier(torch.cat([f, readout], dim=-1)).squeeze(-1)
        ones_a = scores.new_ones(len(a_f))
        return {
            "f": f,
            "scores": scores,
            "A_att": a_att,
            "N_att": n_att,
            "A_Natt": an_att,
            "N_Aatt": na_att,
            # per video, in the order of `labels`, or per abnormal / normal video
            "att_loss": losses.topk_bce(scores.topk(k, dim=-1).values.mean(-1), labels),
            "N_Aatt_loss": losses.topk_bce((1 - na_att).topk(k, dim=-1).values.mean(-1), ones_a),
            "A_loss": losses.topk_bce(a_att.topk(k, dim=-1).values.mean(-1), ones_a),
            "N_loss": F.binary_cross_entropy(n_att, torch.ones_like(n_att), reduction="none").mean(-1),
            "A_Nloss": F.binary_cross_entropy(an_att, torch.zeros_like(an_att), reduction="none").mean(-1),
            "triplet": triplet,  # per pair
            "distance": distance,  # per pair
            "kl": kl,  # per normal video
        }  # fmt: skip

    def per_video_loss(self, terms: dict[str, Tensor], labels: Tensor) -> Tensor:
        """AD_Loss spread over the batch's videos so that their mean is the released cost:
        a term averaged over the B abnormal (or normal) videos counts twice per video when
        averaged over all 2B; pair terms go to each pair's abnormal video."""
        normal, abnormal = labels == 0, labels == 1
        n_videos, pairs = len(labels), len(terms["triplet"])
        per_video = terms["att_loss"].clone()
        on_normal = self.lambda_memory * (terms["N_loss"] + terms["A_Nloss"])
        on_normal = on_normal + self.lambda_kl * terms["kl"]
        per_video[normal] += on_normal * n_videos / int(normal.sum())
        on_abnormal = self.lambda_memory * (terms["A_loss"] + terms["N_Aatt_loss"])
        per_video[abnormal] += on_abnormal * n_videos / int(abnormal.sum())
        pair = self.lambda_triplet * terms["triplet"] + self.lambda_distance * terms["distance"]
        owners = torch.where(abnormal)[0][:pairs]
        per_video[owners] += pair * n_videos / pairs
        return per_video

    def _urdmu_objective(self, batch: Batch) -> tuple[Objective, dict[str, Tensor]]:
        labels = require_labels(batch, type(self).__name__.lower())
        if not bool(batch.mask.all()):
            raise ValueError("UR-DMU trains on videos of one length (detect.train_segments)")
        out = self.terms(batch.x, labels)
        per_video = self.per_video_loss(out, labels)
        parts = {
            name: out[key].mean()
            for name, key in (
                ("mil", "att_loss"),
                ("memory", "A_loss"),
                ("triplet", "triplet"),
                ("kl", "kl"),
                ("distance", "distance"),
            )
        }
        objective = Objective(per_video, batch.is_synthetic.long(), per_video.new_zeros(()), parts)
        return objective, out

    def objective(self, batch: Batch) -> Objective:
        return self._urdmu_objective(batch)[0]


def _gather_mean(values: Tensor, index: Tensor) -> Tensor:
    """Mean of values [B, T, d] at index [B, k] per row: [B, d]."""
    picked = values.gather(1, index.unsqueeze(-1).expand(-1, -1, values.shape[-1]))
    return picked.mean(dim=1)

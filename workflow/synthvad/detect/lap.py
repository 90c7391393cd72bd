"""LAP as GV-VAD's code trains it (Sumutan/GV-VAD: model_tcc_triplet_v2_oral.py,
train_tcc_difLR.py; the LAP/TEVAD/RTFM code line).

tests/test_lap_parity.py loads the official state dict through `OFFICIAL_KEYS` and
reproduces its outputs and every loss term to 1e-5 (fixture made by
tests/fixtures/make_lap_fixture.py).

- Temporal context (RTFM's MTN): three dilated convolutions (dilation 1, 2, 4) beside a
  1x1 reduction and a non-local block, concatenated, fused by a convolution, plus the
  input; dropout 0.7. An optional per-segment caption stream (TEVAD) gets its own
  context module and is concatenated to the visual one.
- Head: MLP -> 512 -> 128 -> 1 with dropout, sigmoid; scores and feature magnitudes are
  averaged over crops.
- Loss: BCE on the mean score of the k segments of largest feature magnitude (RTFM's
  selection, with dropout on the magnitudes) + 1e-4 (|100 - ||abnormal top-k feature|| |
  + ||normal top-k feature||)^2 + smoothness 8e-4 + sparsity 8e-3 on the abnormal scores
  + 0.001 pseudo-label BCE from the class-text bank + 0.01 triplet (gama 0.1, applied twice
  as released) on the segments the bank and scores pick.

synthvad differences, on purpose: the loss is also available per video for synthetic
sample loss scaling as GV-VAD Eq. 6 publishes it (`ssls: per_sample`, the default);
`ssls: released` scales the whole batch loss by the abnormal batch's real/synthetic mix
as the released code does. Model selection uses the validation split.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from synthvad.detect import losses
from synthvad.detect.data import Batch
from synthvad.detect.layers import Standardize, load_official_state, score_by_length
from synthvad.detect.models import Objective, require_labels

# The released loss folds the abnormal scores into rows of T / 32 (its 32 is hard-coded).
RELEASED_FOLD = 32
VLR_STRATEGIES = (
    "none",
    *(f"{w}_{d}" for w in ("linear", "exponential", "cosine") for d in ("cosine", "step", "none")),
)

# Official Model state-dict key (prefix) -> synthvad LAP key (prefix).
OFFICIAL_KEYS = {
    "Aggregate.conv_1.": "context.dilated.0.",
    "Aggregate.conv_2.": "context.dilated.1.",
    "Aggregate.conv_3.": "context.dilated.2.",
    "Aggregate.conv_4.0.": "context.reduce.",
    "Aggregate.conv_5.": "context.fuse.",
    "Aggregate.non_local.g.": "context.non_local.value.",
    "Aggregate.non_local.theta.": "context.non_local.query.",
    "Aggregate.non_local.phi.": "context.non_local.key.",
    "Aggregate.non_local.W.": "context.non_local.out.",
    "fc1.": "head.0.",
    "fc2.": "head.3.",
    "fc3.": "head.6.",
}
# Built by the released Model but unused in the configuration loaded (or never used).
OFFICIAL_UNUSED = ("fc0.", "VLR")


def from_official(state: dict[str, Tensor], caption_context: bool) -> dict[str, Tensor]:
    """An official GV-VAD Model state dict with synthvad's key names, plus the identity
    standardisation (the released model sees raw features)."""
    renames = dict(OFFICIAL_KEYS)
    if caption_context:
        renames.update(
            {k.replace("Aggregate.", "Aggregate_text."): v.replace("context.", "caption_context.")
             for k, v in OFFICIAL_KEYS.items() if k.startswith("Aggregate.")}
        )  # fmt: skip
    out = {}
    for key, value in state.items():
        old = next((o for o in renames if key.startswith(o)), None)
        if old is not None:
            out[renames[old] + key[len(old) :]] = value
        elif not (key.startswith(OFFICIAL_UNUSED) or key.startswith("Aggregate_text.")):
            raise KeyError(f"official LAP key {key!r} has no synthvad name")
    dim = out["context.reduce.weight"].shape[1]
    out.update({"norm.mean": torch.zeros(dim), "norm.std": torch.ones(dim)})
    return out


class NonLocal(nn.Module):
    """1-D non-local block: softmax-free dot-product attention divided by T, a 1x1
    projection with a zero-initialised batch norm, and the input added."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        inner = max(1, channels // 2)
        self.value = nn.Conv1d(channels, inner, 1)
        self.query = nn.Conv1d(channels, inner, 1)
        self.key = nn.Conv1d(channels, inner, 1)
        self.out = nn.Sequential(nn.Conv1d(inner, channels, 1), nn.BatchNorm1d(channels))
        nn.init.zeros_(self.out[1].weight)
        nn.init.zeros_(self.out[1].bias)

    def forward(self, x: Tensor) -> Tensor:
        """[N, c, T] -> [N, c, T]."""
        q, k, v = self.query(x), self.key(x), self.value(x)
        attention = q.transpose(1, 2) @ k / x.shape[-1]  # [N, T, T]
        y = (attention @ v.transpose(1, 2)).transpose(1, 2)
        return self.out(y) + x


class TemporalContext(nn.Module):
    """RTFM's multi-scale temporal network: [N, T, D] -> [N, T, D]."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        branch = dim // 4
        if branch < 2:
            raise ValueError(f"LAP's temporal context needs at least 8 feature dims, got {dim}")
        self.dilated = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(dim, branch, 3, padding=d, dilation=d), nn.ReLU(), nn.BatchNorm1d(branch)
            )
            for d in (1, 2, 4)
        )
        self.reduce = nn.Conv1d(dim, branch, 1, bias=False)
        self.non_local = NonLocal(branch)
        self.fuse = nn.Sequential(
            nn.Conv1d(4 * branch, dim, 3, padding=1, bias=False), nn.ReLU(), nn.BatchNorm1d(dim)
        )

    def forward(self, x: Tensor) -> Tensor:
        h = x.transpose(1, 2)
        parts = [conv(h) for conv in self.dilated]
        parts.append(self.non_local(F.relu(self.reduce(h))))
        return (self.fuse(torch.cat(parts, dim=1)) + h).transpose(1, 2)


def pseudo_labels(stream: Tensor, bank: Tensor) -> Tensor:
    """1 where a segment's best cosine similarity to the class-text bank exceeds the
    batch's mean + 1 std of those similarities: [n, T, E], [K, E] -> [n, T] float."""
    # LAP pseudo-anomaly labels as released (calculate_abn): max_k cos(z, b_k) > mu + sigma.
    best = F.cosine_similarity(stream.unsqueeze(2), bank[None, None], dim=-1).amax(dim=-1)
    std, mean = torch.std_mean(best)
    return (best > mean + std).to(stream.dtype)


def released_sparsity(abnormal_scores: Tensor) -> Tensor:
    """Mean over the fold's columns of their L2 norms: [n, T] -> scalar."""
    # RTFM/LAP sparsity as released: mean(||S||_2 over dim 0) of scores folded to T / 32 columns.
    return abnormal_scores.reshape(-1, fold_width(abnormal_scores.shape[1])).norm(dim=0).mean()


def released_smoothness(abnormal_scores: Tensor) -> Tensor:
    """Sum of squared differences of consecutive fold rows (across videos): [n, T] -> scalar."""
    # RTFM/LAP smoothness as released: sum_i (s_{i+1} - s_i)^2 over the flattened batch.
    rows = abnormal_scores.reshape(-1, fold_width(abnormal_scores.shape[1]))
    return (rows[1:] - rows[:-1]).pow(2).sum()


def fold_width(length: int) -> int:
    """Columns of the released score fold: T / 32 for T a multiple of 32, else 1."""
    return length // RELEASED_FOLD if length % RELEASED_FOLD == 0 else 1


def magnitude_loss(abnormal_top: Tensor, normal_top: Tensor, margin: float) -> Tensor:
    """Per (crop, pair) row: (|margin - ||mean a|| | + ||mean n||)^2: [R, k, F] x2 -> [R]."""
    # RTFM Eq. 2 (feature magnitude), as released: squared, not hinged.
    abnormal = (margin - abnormal_top.mean(dim=1).norm(dim=-1)).abs()
    return (abnormal + normal_top.mean(dim=1).norm(dim=-1)).pow(2)


def vlr_factor(step: int, total_steps: int, strategy: str, offset: int = 100) -> float:
    """GV-VAD's virtual-sample learning-rate schedule at `step` (1-based), as released:
    evaluated at step + 100, warm-up over the first 10% of steps from 0.001 to 1, then decay."""
    if strategy == "none":
        return 1.0
    if strategy not in VLR_STRATEGIES:
        raise ValueError(f"unknown VLR strategy {strategy!r}; valid: {VLR_STRATEGIES}")
    warm_kind, decay_kind = strategy.split("_")
    t = step + offset
    warmup = int(total_steps * 0.1)
    start, target = 0.001, 1.0
    if t < warmup:
        if warm_kind == "linear":
            return start + (target - start) * t / warmup
        if warm_kind == "exponential":
            return start * (target / start) ** (t / warmup)
        return start + 0.5 * (target - start) * (1 - math.cos(math.pi * t / warmup))
    if decay_kind == "cosine":
        return target * 0.5 * (1 + math.cos(math.pi * (t - warmup) / (total_steps - warmup)))
    if decay_kind == "step":
        return target * 0.1 ** ((t - warmup) // 200)
    return target


class LAP(nn.Module):
    supervision = "weak"
    fixed_length = True  # the released loader resamples every video to one length

    def __init__(self, dim: int, cfg: dict) -> None:
        super().__init__()
        self.standardize = bool(cfg.get("standardize", False))
        self.norm = Standardize(dim)
        self.caption_dim = int(cfg.get("caption_dim") or 0)
        self.context = TemporalContext(dim)
        self.caption_context = (
            TemporalContext(self.caption_dim)
            if self.caption_dim and cfg.get("caption_context", True)
            else None
        )
        hidden = [int(h) for h in cfg.get("head_hidden", (512, 128))]
        dropout = float(cfg.get("dropout", 0.7))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Sequential(
            nn.Linear(dim + self.caption_dim, hidden[0]),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden[0], hidden[1]),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden[1], 1),
        )
        self.k = int(cfg.get("topk", 3))
        self.margin = float(cfg.get("magnitude_margin", 100.0))
        self.lambda_magnitude = float(cfg.get("lambda_magnitude", 1e-4))
        self.lambda_smooth = float(cfg.get("lambda_smooth", 8e-4))
        self.lambda_sparse = float(cfg.get("lambda_sparse", 8e-3))
        self.lambda_pseudo = float(cfg.get("lambda_pseudo", 0.001))
        self.lambda_triplet = float(cfg.get("lambda_triplet", 0.01))
        self.triplet_margin = float(cfg.get("triplet_margin", 1.0))
        self.pseudo_rule = str(cfg.get("pseudo_labels", "released"))
        self.ssls = str(cfg.get("ssls", "per_sample"))
        self.vlr_strategy = str(cfg.get("vlr_strategy", "none"))
        vlr_factor(1, 10, self.vlr_strategy)  # fail on a bad name at construction
        # The class-text bank [K, E] (a rule output); not saved: only training reads it.
        self.register_buffer("bank", torch.zeros(0, 0), persistent=False)

    def set_bank(self, bank: Tensor) -> None:
        self.bank = bank.to(self.bank.device, torch.float32)

    def load_released(self, path: str) -> None:
        """Weights of a GV-VAD/LAP checkpoint (the official Model's state dict, torch.save)."""
        state = load_official_state(path, "LAP", self.standardize)
        mapped = from_official(state, caption_context=self.caption_context is not None)
        missing, unexpected = self.load_state_dict(mapped, strict=False)
        if missing or unexpected:
            raise ValueError(f"init_from {path}: keys missing {missing}, unexpected {unexpected}")

    def features(self, x: Tensor, caption: Tensor | None = None) -> Tensor:
        """Per-row fused features: x [N, T, D] (+ caption [N, T, E]) -> [N, T, D (+E)]."""
        if self.standardize:
            x = self.norm(x)
        h = self.dropout(self.context(x))
        if caption is not None and not self.caption_dim:
            raise ValueError("captions given to a LAP built without a caption stream")
        if self.caption_dim:
            if caption is None:
                raise ValueError("this LAP was built with a caption stream; pass its embeddings")
            if self.caption_context is not None:
                caption = self.dropout(self.caption_context(caption))
            h = torch.cat([h, caption], dim=-1)
        return h

    def score_rows(self, x: Tensor, caption: Tensor | None = None) -> Tensor:
        """Test path: segment scores [N, T] of full-length rows (one crop each)."""
        return torch.sigmoid(self.head(self.features(x, caption)).squeeze(-1))

    def forward(self, x: Tensor, mask: Tensor, captions: Tensor | None = None) -> Tensor:
        """Segment scores [B, T] of visual rows (+ their captions [B, T, E]), unpadded (the
        temporal context would see padding) and in bounded chunks (score_by_length)."""
        return score_by_length(self.score_rows, x, mask, captions)

    def video_scores(self, scores: Tensor, mask: Tensor) -> Tensor:
        return losses.topk_mean(scores, mask, self.k)

    def terms(self, x: Tensor, labels: Tensor, caption: Tensor | None = None) -> dict[str, Tensor]:
        """The released training path: x [B, C, T, D] (caption [B, C, T, E]) with B/2
        normal videos then B/2 abnormal ones, paired in order. Returns outputs and the
        loss terms, each as released (scalars) and per video where the SSLS needs it."""
        b, c, t, d = x.shape
        n = b // 2
        if b % 2 or bool((labels[:n] != 0).any()) or bool((labels[n:] != 1).any()):
            raise ValueError("a LAP batch holds B normal videos, then B abnormal ones")
        stream = caption if caption is not None else x
        has_bank = self.pseudo_rule != "off"
        if has_bank:
            if self.bank.numel() == 0:
                raise ValueError("LAP's pseudo labels need the class-text bank (set_bank)")
            if self.bank.shape[1] != stream.shape[-1]:
                raise ValueError(
                    f"LAP: the class-text bank has {self.bank.shape[1]} dims but the "
                    f"{'caption' if caption is not None else 'visual'} features have "
                    f"{stream.shape[-1]}; the bank is compared with them, so they must come "
                    "from the same CLIP model (or set pseudo_labels: off)"
                )
            # The released code compares crop 4 of the (crop-tiled) captions; crops agree there.
            pick = min(4, c - 1) if caption is not None else None
            compared = stream[n:, pick] if pick is not None else stream[n:].mean(dim=1)
            pseudo = pseudo_labels(compared, self.bank)  # [n, T]
        feats = self.features(
            x.reshape(b * c, t, d), None if caption is None else caption.reshape(b * c, t, -1)
        )  # [B C, T, F]
        row_scores = torch.sigmoid(self.head(feats).squeeze(-1))
        scores = row_scores.view(b, c, t).mean(dim=1)  # [B, T]
        magnitudes = feats.norm(dim=-1).view(b, c, t).mean(dim=1)
        f = feats.view(b, c, t, -1)

        def top(group: slice) -> tuple[Tensor, Tensor]:
            dropped = magnitudes[group] * self.dropout(torch.ones_like(magnitudes[group]))
            index = dropped.topk(self.k, dim=1).indices  # [n, k]
            score = scores[group].gather(1, index).mean(dim=1)
            picked = f[group].gather(2, index[:, None, :, None].expand(-1, c, -1, f.shape[-1]))
            return score, picked.transpose(0, 1).reshape(c * n, self.k, -1)  # rows crop-major

        abnormal_score, abnormal_top = top(slice(n, b))
        normal_score, normal_top = top(slice(0, n))
        video_score = torch.cat([normal_score, abnormal_score])
        bce = F.binary_cross_entropy(video_score, labels.to(video_score.dtype), reduction="none")
        magnitude = magnitude_loss(abnormal_top, normal_top, self.margin)  # [C n]
        abnormal_scores = scores[n:]
        out = {
            "scores": scores,
            "feature_magnitudes": magnitudes,
            "video_score": video_score,
            "bce": bce.mean(),
            "magnitude": magnitude.mean(),
            "smoothness": released_smoothness(abnormal_scores),
            "sparsity": released_sparsity(abnormal_scores),
            "bce_per_video": bce,
            "magnitude_per_pair": magnitude.view(c, n).mean(dim=0),
        }
        # Triplet: the least anomalous normal and abnormal segments against the most
        # anomalous bank-matching ones; features of all crops side by side.
        capacity = min(self.bank.shape[0] if has_bank else self.k, n * t)
        flat_n = f[:n].permute(0, 2, 1, 3).reshape(n * t, -1)
        flat_a = f[n:].permute(0, 2, 1, 3).reshape(n * t, -1)
        anchor = scores[:n].reshape(-1).topk(capacity, largest=False).indices
        positive = abnormal_scores.reshape(-1).topk(capacity, largest=False).indices
        matched = abnormal_scores * pseudo if has_bank else abnormal_scores
        negative = matched.reshape(-1).topk(capacity).indices
        triplet = F.triplet_margin_loss(
            flat_n[anchor], flat_a[positive], flat_a[negative],
            margin=self.triplet_margin, reduction="none",
        )  # fmt: skip
        out["triplet"] = triplet.mean()
        out["triplet_owner"] = negative // t  # the abnormal video of each triplet's negative
        out["triplet_per_triplet"] = triplet
        if has_bank:
            target = 1 - abnormal_scores if self.pseudo_rule == "released" else abnormal_scores
            pseudo_bce = F.binary_cross_entropy(target, pseudo, reduction="none")  # [n, T]
            out.update(
                pseudo_labels=pseudo, pseudo=pseudo_bce.mean(), pseudo_per_segment=pseudo_bce
            )
        else:
            out["pseudo"] = scores.new_zeros(())
        out["cost"] = (
            out["bce"]
            + self.lambda_magnitude * out["magnitude"]
            + self.lambda_smooth * out["smoothness"]
            + self.lambda_sparse * out["sparsity"]
            + self.lambda_pseudo * out["pseudo"]
            + self.lambda_triplet * out["triplet"]
        )
        return out

    def per_video_loss(self, out: dict[str, Tensor], n: int) -> Tensor:
        """The released cost spread over the 2n videos so that their mean is the cost:
        pair terms and the abnormal-score regularisers go to the abnormal video they come
        from, the sparsity norm by each video's share of its squared scores."""
        b = 2 * n
        per_video = out["bce_per_video"].clone()
        owner = per_video[n:]
        owner += self.lambda_magnitude * out["magnitude_per_pair"] * b / n
        scores = out["scores"][n:]
        t = scores.shape[1]
        width = fold_width(t)
        rows = scores.reshape(-1, width)
        # Smoothness: the difference starting at row r belongs to the video of row r.
        diffs = F.pad((rows[1:] - rows[:-1]).pow(2).sum(dim=1), (0, 1))
        owner += self.lambda_smooth * b * diffs.view(n, -1).sum(dim=1)
        # Sparsity: mean_j ||col_j|| = sum over elements of s^2 / ||col_j||, averaged over j.
        share = rows.pow(2) / rows.norm(dim=0).clamp_min(1e-12) / width
        owner += self.lambda_sparse * b * share.view(n, -1).sum(dim=1)
        if "pseudo_per_segment" in out:
            owner += self.lambda_pseudo * b * out["pseudo_per_segment"].sum(dim=1) / (n * t)
        triplets = out["triplet_per_triplet"]
        owner.index_add_(
            0, out["triplet_owner"], self.lambda_triplet * b * triplets / len(triplets)
        )
        return per_video

    def objective(self, batch: Batch) -> Objective:
        labels = require_labels(batch, "lap")
        if not bool(batch.mask.all()):
            raise ValueError("LAP trains on videos of one length (detect.train_segments)")
        normal, abnormal = torch.where(labels == 0)[0], torch.where(labels == 1)[0]
        if not (len(normal) and len(abnormal)):
            raise ValueError("a LAP batch needs normal and abnormal videos")
        # Released batches are balanced; an unbalanced one (a validation set) repeats the
        # smaller side cyclically so that every video counts.
        n = max(len(normal), len(abnormal))
        order = torch.cat(
            [normal.repeat(-(-n // len(normal)))[:n], abnormal.repeat(-(-n // len(abnormal)))[:n]]
        )
        labels, synthetic = labels[order], batch.is_synthetic[order]
        captions = None if batch.captions is None else batch.captions[order].unsqueeze(1)
        out = self.terms(batch.x[order].unsqueeze(1), labels, captions)
        parts = {k: out[k].detach() for k in ("bce", "magnitude", "smoothness", "sparsity", "pseudo", "triplet")}  # fmt: skip
        if self.ssls == "released":
            # The released VLR: the whole batch cost times the abnormal half's mix of real
            # and synthetic videos (each abnormal video carries cost; alpha^s scales it).
            per_sample = out["cost"].expand(n)
            n_synthetic = synthetic[n:].long()
        else:
            per_sample = self.per_video_loss(out, n)
            n_synthetic = synthetic.long()
        return Objective(per_sample, n_synthetic, per_sample.new_zeros(()), parts)


def text_bank_from_file(path: str) -> Tensor:
    """The class-text bank [K, E] from the rule's .npy output."""
    bank = np.load(path)
    if bank.ndim != 2 or not len(bank):
        raise ValueError(f"{path}: a class-text bank is [K, E] with K >= 1, got {bank.shape}")
    return torch.from_numpy(bank.astype(np.float32))

"""Generation quality as PA-VAD reports it (Table 3): FID/KID on frames, FVD/KVD on clips.

The formulas come from torchmetrics, the TF-compatible Inception-v3 from torch-fidelity;
this module is glue only:

- FID = `frechet_distance` on `FrameFeatures` (Inception-v3 pool3, 2048-D) of frames.
- KID = `kernel_distance` on the same frame features.
- FVD = `frechet_distance` on I3D clip features (extracted elsewhere, [clips, D]).
- KVD = `kernel_distance` on the same I3D clip features.

Both formulas take precomputed feature matrices: torchmetrics' metrics are given an
identity "feature extractor" (`_GivenFeatures`), so its own statistics and estimators run
on our features unchanged.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

# Inception-v3 pool3 width.
POOL_FEATURES = 2048
# Config key that names the local copy of torch-fidelity's converted TF Inception weights
# (weights-inception-2015-12-05-6726825d.pth, "pt_inception-2015-12-05"); never downloaded.
WEIGHTS_KEY = "quality.inception_weights"


class _GivenFeatures(torch.nn.Module):
    """Identity "feature extractor": the metric's inputs already are the features."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features  # read by FrechetInceptionDistance

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def _as_features(real: np.ndarray, fake: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    a = torch.from_numpy(np.array(real, dtype=np.float64, copy=True))
    b = torch.from_numpy(np.array(fake, dtype=np.float64, copy=True))
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(
            f"expected feature matrices [N, D] and [M, D], got {a.shape} and {b.shape}"
        )
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"need at least 2 samples per set, got {len(a)} and {len(b)}")
    return a, b


def frechet_distance(real: np.ndarray, fake: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets [N, D] and [M, D].

    ||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2)), with sample means and sample
    covariances (N - 1 normalisation) accumulated in float64 by torchmetrics'
    `FrechetInceptionDistance` (fed through an identity feature module). FID on
    Inception pool3 frame features, FVD on I3D clip features.
    """
    a, b = _as_features(real, fake)
    metric = FrechetInceptionDistance(feature=_GivenFeatures(a.shape[1]))
    metric.update(a, real=True)
    metric.update(b, real=False)
    return float(metric.compute())


def kernel_distance(
    real: np.ndarray,
    fake: np.ndarray,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef: float = 1.0,
    seed: int = 0,
) -> tuple[float, float]:
    """Kernel distance (KID/KVD): mean and std of the unbiased MMD^2 over random subsets.

    Kernel k(x, y) = (gamma x.y + coef)^degree, gamma = 1 / D when None. Each of `subsets`
    rounds draws `subset_size` rows without replacement from each set and evaluates
    torchmetrics' unbiased estimator (`KernelInceptionDistance`, identity feature module);
    std is over rounds (population std, as torchmetrics). `subset_size` is capped at the
    smaller set's size (the estimator needs equal subset sizes), so small sets still give
    a value. Deterministic given `seed`: the subsets are drawn from a forked, seeded torch
    CPU generator, leaving the global RNG state untouched.
    """
    a, b = _as_features(real, fake)
    with warnings.catch_warnings():  # "will save all extracted features": that is the point
        warnings.filterwarnings("ignore", message="Metric `Kernel Inception Distance`")
        metric = KernelInceptionDistance(
            feature=_GivenFeatures(a.shape[1]),
            subsets=subsets,
            subset_size=min(subset_size, len(a), len(b)),
            degree=degree,
            gamma=None if gamma is None else float(gamma),
            coef=float(coef),
        )
    metric.update(a, real=True)
    metric.update(b, real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


class FrameFeatures:
    """Inception-v3 pool3 features (2048-D) of uint8 RGB frames, from a local weights file.

    The network is torch-fidelity's `FeatureExtractorInceptionV3` (the TF 2015-12-05
    Inception used by the reference FID code, TF-1.x bilinear resize to 299x299 inside);
    `weights` is the file torch-fidelity would otherwise download
    (weights-inception-2015-12-05-6726825d.pth), set as config key `quality.inception_weights`.
    torch-fidelity unpickles it (`torch.load(..., weights_only=False)`): use a trusted copy.
    """

    def __init__(
        self, weights: str | Path, device: str | torch.device = "cpu", batch_size: int = 32
    ) -> None:
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(
                f"Inception-v3 weights not found at {path}: set config key `{WEIGHTS_KEY}` to a "
                "local copy of torch-fidelity's weights-inception-2015-12-05-6726825d.pth"
            )
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.model = FeatureExtractorInceptionV3(
            "inception-v3-compat", [str(POOL_FEATURES)], feature_extractor_weights_path=str(path)
        ).to(self.device)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """uint8 RGB frames [N, H, W, 3] -> float32 features [N, 2048]."""
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(
                f"expected uint8 frames [N, H, W, 3], got {frames.dtype} {frames.shape}"
            )
        out = [np.zeros((0, POOL_FEATURES), dtype=np.float32)]
        with torch.inference_mode():
            for start in range(0, len(frames), self.batch_size):
                batch = torch.from_numpy(
                    np.ascontiguousarray(frames[start : start + self.batch_size])
                )
                (features,) = self.model(batch.permute(0, 3, 1, 2).to(self.device))
                out.append(features.float().cpu().numpy())
        return np.concatenate(out)


def save_random_inception_weights(path: str | Path, seed: int = 0) -> Path:
    """Write random Inception-v3 weights in the real file's format, for tests.

    Same as torch-fidelity's converter (utils/util_convert_inception_weights.py) writes: a
    plain dict of float32 tensors (conv/bn/fc parameters and bn running stats, no
    `num_batches_tracked`) saved with `torch.save`, so `FrameFeatures` loads it through the
    real path. The key set and shapes come from torch-fidelity's own module.
    """

    class _Skeleton(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True, assign=False):
            return None  # keep the fresh (seeded) initialisation

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({}, path)  # the skeleton's constructor reads a file; overwritten below
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        state = _Skeleton("inception-v3-compat", [str(POOL_FEATURES)], str(path)).state_dict()
        weights = {}
        for name, tensor in state.items():
            if name.endswith("num_batches_tracked"):
                continue
            tensor = tensor.detach().clone().float().contiguous()
            if name.endswith("conv.weight"):
                # He-normal: the signal keeps its scale through the random network, so
                # different frames give different features (default init fades to a constant).
                tensor.normal_(0.0, (2.0 / tensor[0].numel()) ** 0.5)
            elif name.endswith("running_var"):
                tensor.uniform_(0.5, 1.5)
            elif ".bn." in name:  # weight ~ 1, bias and running_mean ~ 0, perturbed
                tensor.add_(0.1 * torch.randn_like(tensor))
            weights[name] = tensor
    torch.save(weights, path)
    return path

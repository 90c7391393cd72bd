"""FID/KID formulas against hand computations; Inception frame features with random weights."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from synthvad.quality import (
    FrameFeatures,
    frechet_distance,
    kernel_distance,
    save_random_inception_weights,
)


def _frechet_by_hand(x: np.ndarray, y: np.ndarray) -> float:
    # ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) on the sample statistics
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False, ddof=1), np.cov(y, rowvar=False, ddof=1)
    root = scipy.linalg.sqrtm(s1 @ s2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * root))


def _mmd2_by_hand(x: np.ndarray, y: np.ndarray, degree=3, gamma=None, coef=1.0) -> float:
    # unbiased MMD^2 with k(a, b) = (gamma a.b + coef)^degree, gamma = 1/D by default, |x| = |y| = m
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    m = len(x)

    def k(a, b):
        return (gamma * float(a @ b) + coef) ** degree

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return (xx + yy) / (m * (m - 1)) - 2 * xy / m**2


def test_frechet_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(0).normal(size=(500, 16))
    scale = 2 * np.trace(np.cov(x, rowvar=False))
    assert abs(frechet_distance(x, x)) <= 1e-6 * scale


@pytest.mark.parametrize("diagonal", [True, False])
def test_frechet_matches_the_formula_on_gaussians(diagonal):
    rng = np.random.default_rng(1)
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.5, 0.0, 0.5])
    s1 = np.diag([1.0, 2.0, 0.5])
    if diagonal:
        s2 = np.diag([3.0, 0.25, 1.0])
    else:
        a = np.array([[1.0, 0.6, 0.0], [0.0, 1.0, -0.4], [0.3, 0.0, 1.0]])
        s2 = a @ a.T
    x = rng.multivariate_normal(mu1, s1, size=3000)
    y = rng.multivariate_normal(mu2, s2, size=2000)
    got = frechet_distance(x, y)
    assert got == pytest.approx(_frechet_by_hand(x, y), rel=1e-8)
    # and the sample value is near the population one
    population = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real)
    assert got == pytest.approx(population, rel=0.1)


def test_kernel_distance_tiny_case_by_hand():
    x = np.array([[0.0, 1.0], [1.0, 2.0], [-1.0, 0.5]])
    y = np.array([[2.0, 0.0], [0.5, -1.0], [1.0, 1.0]])
    mean, std = kernel_distance(x, y, subsets=1, subset_size=3)
    assert mean == pytest.approx(_mmd2_by_hand(x, y), rel=1e-12)
    assert std == 0.0
    mean, _ = kernel_distance(x, y, subsets=1, subset_size=3, degree=2, gamma=0.3, coef=2.0)
    assert mean == pytest.approx(_mmd2_by_hand(x, y, degree=2, gamma=0.3, coef=2.0), rel=1e-12)


def test_kernel_distance_caps_the_subset_at_the_smaller_set():
    # 3 vs 4 points: subset_size 1000 -> 3, so one round compares x with 3 of the 4 y's
    x = np.array([[0.0, 1.0], [1.0, 2.0], [-1.0, 0.5]])
    y = np.array([[2.0, 0.0], [0.5, -1.0], [1.0, 1.0], [-0.5, 0.3]])
    candidates = [_mmd2_by_hand(x, np.delete(y, j, axis=0)) for j in range(4)]
    mean, _ = kernel_distance(x, y, subsets=1)
    assert min(abs(mean - c) for c in candidates) <= 1e-12 * max(map(abs, candidates))
    mean, std = kernel_distance(x, y, subsets=50)
    assert min(candidates) - 1e-12 <= mean <= max(candidates) + 1e-12
    assert std > 0


def test_kernel_distance_is_deterministic_given_seed():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(60, 5)), rng.normal(0.5, 1.0, size=(50, 5))
    state = torch.random.get_rng_state()
    first = kernel_distance(x, y, subsets=20, subset_size=20, seed=7)
    assert torch.equal(torch.random.get_rng_state(), state)  # global RNG untouched
    assert kernel_distance(x, y, subsets=20, subset_size=20, seed=7) == first
    assert kernel_distance(x, y, subsets=20, subset_size=20, seed=8) != first


def test_kernel_distance_of_a_set_with_itself_is_near_zero():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 8))
    self_mean, _ = kernel_distance(x, x, subsets=50, subset_size=100)
    shifted_mean, _ = kernel_distance(x, x + 0.5, subsets=50, subset_size=100)
    assert shifted_mean > 0
    assert abs(self_mean) < 0.05 * shifted_mean


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory):
    return save_random_inception_weights(tmp_path_factory.mktemp("inception") / "pt.pth", seed=0)


def test_frame_features_with_random_weights(inception_weights):
    extractor = FrameFeatures(inception_weights, device="cpu", batch_size=3)  # 2 batches
    saved = torch.load(inception_weights)
    assert type(saved) is dict and all(t.dtype == torch.float32 for t in saved.values())
    loaded = extractor.model.state_dict()
    assert all(torch.equal(loaded[name], tensor) for name, tensor in saved.items())
    frames = np.random.default_rng(4).integers(0, 256, size=(4, 48, 64, 3), dtype=np.uint8)
    features = extractor(frames)
    assert features.shape == (4, 2048)
    assert np.isfinite(features).all()


def test_frame_features_missing_weights_names_the_config_key(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"quality\.inception_weights"):
        FrameFeatures(tmp_path / "absent.pth")

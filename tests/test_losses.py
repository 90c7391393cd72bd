"""Every loss term against a value computed by hand on a tiny tensor (equation named)."""

from __future__ import annotations

import math

import pytest
import torch

from synthvad.detect import losses
from synthvad.detect.layers import reverse_gradient


def test_topk_mean_by_hand():
    scores = torch.tensor([[0.9, 0.1, 0.5]])
    mask = torch.ones(1, 3, dtype=torch.bool)
    # GV-VAD Eq. 8 video score: top 2 of [0.9, 0.1, 0.5] = 0.9, 0.5 -> (0.9 + 0.5) / 2 = 0.7
    assert losses.topk_mean(scores, mask, 2).item() == pytest.approx(0.7)


def test_topk_mean_ignores_padding_and_shrinks_k_to_valid_length():
    # Padding holds the largest raw values: it must never be picked.
    scores = torch.tensor([[0.2, 0.4, 0.99, 0.99], [0.3, 0.6, 0.8, 0.1]])
    mask = torch.tensor([[True, True, False, False], [True, True, True, True]])
    got = losses.topk_mean(scores, mask, 3)
    # row 0: 2 valid segments, k -> 2: (0.2 + 0.4) / 2 = 0.3
    # row 1: top 3 of [0.3, 0.6, 0.8, 0.1] = 0.8, 0.6, 0.3 -> 1.7 / 3
    assert got.tolist() == pytest.approx([0.3, 1.7 / 3])


def test_topk_mean_with_one_k_per_row():
    scores = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.8, 0.4]])
    mask = torch.ones(2, 3, dtype=torch.bool)
    # row 0, k 1: 0.9; row 1, k 3: (0.2 + 0.8 + 0.4) / 3
    got = losses.topk_mean(scores, mask, torch.tensor([1, 3]))
    assert got.tolist() == pytest.approx([0.9, 1.4 / 3])


def test_topk_mean_gradient_reaches_only_selected_segments():
    scores = torch.tensor([[0.9, 0.1, 0.5, 0.95]], requires_grad=True)
    mask = torch.tensor([[True, True, True, False]])
    losses.topk_mean(scores, mask, 2).sum().backward()
    # selected 0.9 and 0.5, each with weight 1/2; padding and 0.1 get nothing
    assert scores.grad.tolist() == [[0.5, 0.0, 0.5, 0.0]]


def test_topk_rejects_empty_video_and_bad_k():
    with pytest.raises(ValueError, match="no valid segment"):
        losses.topk_mean(torch.zeros(1, 2), torch.zeros(1, 2, dtype=torch.bool), 1)
    with pytest.raises(ValueError, match="k must be"):
        losses.topk_mean(torch.zeros(1, 2), torch.ones(1, 2, dtype=torch.bool), 0)


def test_topk_bce_by_hand():
    # GV-VAD Eq. 8: label 1 at 0.7: -ln 0.7; label 0 at 0.7: -ln 0.3; label 0 at 0.2: -ln 0.8
    got = losses.topk_bce(torch.tensor([0.7, 0.7, 0.2]), torch.tensor([1, 0, 0]))
    assert got.tolist() == pytest.approx([-math.log(0.7), -math.log(0.3), -math.log(0.8)])


def test_ranking_hinge_by_hand():
    # PA-VAD Eq. 1: max(0, 1 - 0.9 + 0.2) = 0.3; max(0, 1 - 0.3 + 0.5) = 1.2; 1 - 1 + 0 -> 0
    got = losses.ranking_hinge(torch.tensor([0.9, 0.3, 1.0]), torch.tensor([0.2, 0.5, 0.0]))
    assert got.tolist() == pytest.approx([0.3, 1.2, 0.0])


def test_smoothness_by_hand_with_mask():
    scores = torch.tensor([[0.1, 0.4, 0.2, 0.9]])
    mask = torch.tensor([[True, True, True, False]])
    # Sultani Eq. 7 lambda_1 term: (0.4 - 0.1)^2 + (0.2 - 0.4)^2 = 0.13; padding ignored
    assert losses.smoothness(scores, mask).item() == pytest.approx(0.13)


def test_sparsity_by_hand_with_mask():
    scores = torch.tensor([[0.1, 0.4, 0.2, 0.9], [0.5, 0.5, 0.0, 0.0]])
    mask = torch.tensor([[True, True, True, False], [True, True, False, False]])
    # Sultani Eq. 7 lambda_2 term: 0.1 + 0.4 + 0.2 = 0.7; 0.5 + 0.5 = 1.0
    assert losses.sparsity(scores, mask).tolist() == pytest.approx([0.7, 1.0])


def test_scale_synthetic_by_hand():
    loss = torch.tensor([1.0, 2.0, 3.0, 4.0])
    n_synthetic = torch.tensor([0, 1, 0, 2])  # the last: a pair of two synthetic videos
    # GV-VAD Eq. 6, alpha^s * l with alpha 0.5: [1, 0.5 * 2, 3, 0.25 * 4]
    assert losses.scale_synthetic(loss, n_synthetic, 0.5).tolist() == [1.0, 1.0, 3.0, 1.0]


def test_scale_synthetic_alpha_one_is_unscaled_and_zero_ignores_synthetic():
    loss = torch.tensor([1.5, 2.0, 3.0])
    n_synthetic = torch.tensor([1, 0, 1])
    assert torch.equal(losses.scale_synthetic(loss, n_synthetic, 1.0), loss)
    assert losses.scale_synthetic(loss, n_synthetic, 0.0).tolist() == [0.0, 2.0, 0.0]


def test_total_loss_is_sum_over_batch_size():
    # GV-VAD Eq. 7 / B: (1 + 2 + 3 + 6) / 4 = 3
    assert losses.total_loss(torch.tensor([1.0, 2.0, 3.0, 6.0])).item() == pytest.approx(3.0)


def test_alpha_objective_by_hand_and_minimum_at_loss_ratio():
    # 0.5 * 2 - 1 * ln 0.5 = 1 + ln 2
    got = losses.alpha_objective(torch.tensor(0.5), torch.tensor(1.0), torch.tensor(2.0))
    assert got.item() == pytest.approx(1.0 + math.log(2.0))
    # derivative L_syn - L_real / alpha vanishes at alpha = L_real / L_syn = 0.25
    alpha = torch.tensor(0.25, requires_grad=True)
    losses.alpha_objective(alpha, torch.tensor(1.0), torch.tensor(4.0)).backward()
    assert alpha.grad.item() == pytest.approx(0.0, abs=1e-6)


def test_urdmu_kl_sums_over_time_and_averages_features_by_hand():
    mu = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])  # [B=1, T=2, d=2]
    logvar = torch.tensor([[[0.0, math.log(2.0)], [0.0, 0.0]]])
    # 0.5 (mu^2 + sigma^2 - ln sigma^2 - 1): t0 = (0.5, 0.5 (1 - ln 2)), t1 = (0, 0);
    # summed over time, averaged over d: 0.25 (2 - ln 2)
    kl = losses.gaussian_kl_over_time(mu, logvar)
    assert kl.tolist() == pytest.approx([0.25 * (2 - math.log(2.0))])
    assert losses.gaussian_kl_over_time(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4)).tolist() == [
        0,
        0,
    ]


def test_slot_assignment_by_hand():
    z = torch.tensor([[2.0, 0.0]])
    memory = torch.tensor([[3.0, 0.0], [0.0, 0.5]])
    # PA-VAD Eq. 10: cosines [1, 0], tau 1 -> softmax [e / (e + 1), 1 / (e + 1)]
    got = losses.slot_assignment(z, memory, tau=1.0)
    e = math.e
    assert got.tolist() == [pytest.approx([e / (e + 1), 1 / (e + 1)])]


def test_slot_usage_and_centers_by_hand():
    q = torch.tensor([[0.7, 0.3], [0.1, 0.9]])
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # PA-VAD Eq. 11: column means [0.4, 0.6]
    assert losses.slot_usage(q).tolist() == pytest.approx([0.4, 0.6])
    # mu_k = sum_n Q_nk Z_n / sum_n Q_nk: [0.7, 0.1] / 0.8 and [0.3, 0.9] / 1.2
    got = losses.slot_centers(q, z)
    assert got.tolist() == [pytest.approx([0.875, 0.125]), pytest.approx([0.25, 0.75])]


def test_usage_weights_by_hand_and_grow_as_usage_falls():
    usage = torch.tensor([0.1, 0.3, 0.6])
    # PA-VAD Eq. 13 factor: u_bar = 1/3 -> (1/3) / u_k = [10/3, 10/9, 5/9]
    got = losses.usage_weights(usage, beta=1.0, eps=0.0)
    assert got.tolist() == pytest.approx([10 / 3, 10 / 9, 5 / 9])
    assert bool((got[:-1] > got[1:]).all())  # less used slot, larger weight
    squared = losses.usage_weights(usage, beta=2.0, eps=0.0)
    assert squared.tolist() == pytest.approx([(10 / 3) ** 2, (10 / 9) ** 2, (5 / 9) ** 2])


def test_usage_update_loss_by_hand():
    memory = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    centers = torch.tensor([[0.0, 0.0], [0.0, 2.0]])
    # PA-VAD Eq. 13: (1/K) sum_k w_k ||m_k - mu_k||^2 = (2 * 1 + 1 * 4) / 2 = 3
    got = losses.usage_update_loss(memory, centers, torch.tensor([2.0, 1.0]))
    assert got.item() == pytest.approx(3.0)


def test_domain_alignment_loss_by_hand():
    # PA-VAD Eq. 12: logits 0 -> p = 0.5: BCE = ln 2 for either label; distance 0.1 * 1^2
    got = losses.domain_alignment_loss(
        torch.tensor([0.0]),
        torch.tensor([0.0, 0.0]),
        torch.tensor([1.0, 0.0]),
        torch.tensor([0.0, 0.0]),
        lambda_dist=0.1,
    )
    assert got.item() == pytest.approx(2 * math.log(2.0) + 0.1)
    # a confident discriminator pays little: real logit -10 (label 0), pseudo +10 (label 1)
    low = losses.domain_alignment_loss(
        torch.tensor([-10.0]), torch.tensor([10.0]), torch.zeros(2), torch.zeros(2), 0.1
    )
    assert low.item() == pytest.approx(2 * math.log1p(math.exp(-10.0)), rel=1e-2)


def test_gradient_reversal_flips_sign_and_scales_by_lambda_da():
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = reverse_gradient(x, 0.3)
    assert torch.equal(y, x)  # identity forward
    (y * torch.tensor([1.0, 2.0, 4.0])).sum().backward()
    # without reversal the gradient would be [1, 2, 4]
    assert x.grad.tolist() == pytest.approx([-0.3, -0.6, -1.2])


def test_reconstruction_error_by_hand():
    x = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    r = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    # LBR-SPR reconstruction loss: mean over D of squared error: (0 + 4) / 2, (1 + 1) / 2
    assert losses.reconstruction_error(x, r).tolist() == [2.0, 1.0]


def test_self_paced_keep_drops_the_highest_errors():
    errors = torch.tensor([0.1, 0.9, 0.5, 0.3])
    # LBR-SPR: drop 25% of 4 = 1 sample, the highest (0.9); 50%: also 0.5
    assert losses.self_paced_keep(errors, 0.25).tolist() == [True, False, True, True]
    assert losses.self_paced_keep(errors, 0.5).tolist() == [True, False, False, True]
    assert losses.self_paced_keep(errors, 0.0).all()
    with pytest.raises(ValueError, match="drop_fraction"):
        losses.self_paced_keep(errors, 1.0)

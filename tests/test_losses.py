"""Loss formulas against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from synthvad.detect import losses


def test_topk_mean_by_hand():
    scores = torch.tensor([[0.9, 0.1, 0.5]])
    mask = torch.ones(1, 3, dtype=torch.bool)
    # top 2 of [0.9, 0.1, 0.5] = 0.9, 0.5 -> (0.9 + 0.5) / 2 = 0.7
    assert losses.topk_mean(scores, mask, 2).item() == pytest.approx(0.7)


def test_topk_mean_ignores_padding_and_shrinks_k_to_valid_length():
    # Padding holds the largest raw values: it must never be picked.
    scores = torch.tensor([[0.2, 0.4, 0.99, 0.99], [0.3, 0.6, 0.8, 0.1]])
    mask = torch.tensor([[True, True, False, False], [True, True, True, True]])
    got = losses.topk_mean(scores, mask, 3)
    # row 0: 2 valid segments, k -> 2: (0.2 + 0.4) / 2 = 0.3
    # row 1: top 3 of [0.3, 0.6, 0.8, 0.1] = 0.8, 0.6, 0.3 -> 1.7 / 3
    assert got.tolist() == pytest.approx([0.3, 1.7 / 3])


def test_topk_mean_k_larger_than_padded_length():
    scores = torch.tensor([[0.5, 0.7]])
    mask = torch.tensor([[True, True]])
    assert losses.topk_mean(scores, mask, 10).item() == pytest.approx(0.6)  # (0.5 + 0.7) / 2


def test_topk_mean_gradient_reaches_only_selected_segments():
    scores = torch.tensor([[0.9, 0.1, 0.5, 0.95]], requires_grad=True)
    mask = torch.tensor([[True, True, True, False]])
    losses.topk_mean(scores, mask, 2).sum().backward()
    # selected 0.9 and 0.5, each with weight 1/2; padding and 0.1 get nothing
    assert scores.grad.tolist() == [[0.5, 0.0, 0.5, 0.0]]


def test_topk_mean_rejects_empty_video_and_bad_k():
    with pytest.raises(ValueError, match="no valid segment"):
        losses.topk_mean(torch.zeros(1, 2), torch.zeros(1, 2, dtype=torch.bool), 1)
    with pytest.raises(ValueError, match="k must be"):
        losses.topk_mean(torch.zeros(1, 2), torch.ones(1, 2, dtype=torch.bool), 0)


def test_topk_bce_by_hand():
    got = losses.topk_bce(torch.tensor([0.7, 0.7, 0.2]), torch.tensor([1, 0, 0]))
    # label 1: -ln 0.7; label 0: -ln(1 - 0.7) = -ln 0.3; label 0 at 0.2: -ln 0.8
    assert got.tolist() == pytest.approx([-math.log(0.7), -math.log(0.3), -math.log(0.8)])


def test_scale_synthetic_halves_only_synthetic_rows():
    loss = torch.tensor([1.0, 2.0, 3.0, 4.0])
    synthetic = torch.tensor([False, True, False, True])
    # alpha^s * l with alpha 0.5: [1, 0.5 * 2, 3, 0.5 * 4]
    assert losses.scale_synthetic(loss, synthetic, 0.5).tolist() == [1.0, 1.0, 3.0, 2.0]


def test_scale_synthetic_learnable_alpha_gets_gradient_from_synthetic_rows():
    alpha = torch.tensor(0.5, requires_grad=True)
    loss = torch.tensor([1.0, 2.0, 4.0])
    synthetic = torch.tensor([True, False, True])
    losses.scale_synthetic(loss, synthetic, alpha).sum().backward()
    # d/d alpha of (alpha * 1 + 2 + alpha * 4) = 1 + 4 = 5
    assert alpha.grad.item() == pytest.approx(5.0)


def test_total_loss_is_sum_over_batch_size():
    # (1 + 2 + 3 + 6) / 4 = 3
    assert losses.total_loss(torch.tensor([1.0, 2.0, 3.0, 6.0])).item() == pytest.approx(3.0)


def test_smoothness_by_hand_with_mask():
    scores = torch.tensor([[0.1, 0.4, 0.2, 0.9]])
    mask = torch.tensor([[True, True, True, False]])
    # (0.4 - 0.1)^2 + (0.2 - 0.4)^2 = 0.09 + 0.04 = 0.13; the pair with padding is ignored
    assert losses.smoothness(scores, mask).item() == pytest.approx(0.13)


def test_sparsity_by_hand_with_mask():
    scores = torch.tensor([[0.1, 0.4, 0.2, 0.9], [0.5, 0.5, 0.0, 0.0]])
    mask = torch.tensor([[True, True, True, False], [True, True, False, False]])
    # 0.1 + 0.4 + 0.2 = 0.7; 0.5 + 0.5 = 1.0
    assert losses.sparsity(scores, mask).tolist() == pytest.approx([0.7, 1.0])

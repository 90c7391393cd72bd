import numpy as np
import pytest

from synthvad.segments import (
    expand_to_frames,
    frame_labels,
    sample_indices,
    segment_bounds,
)


def test_last_partial_segment_kept_or_dropped():
    # 40 frames = 16 + 16 + 8
    assert segment_bounds(40, 16, True) == [(0, 16), (16, 32), (32, 40)]
    assert segment_bounds(40, 16, False) == [(0, 16), (16, 32)]
    assert segment_bounds(32, 16, True) == [(0, 16), (16, 32)]
    assert segment_bounds(10, 16, False) == []
    assert segment_bounds(40, 16, True)[-1][1] == 40  # frames scored
    assert segment_bounds(40, 16, False)[-1][1] == 32
    with pytest.raises(ValueError):
        segment_bounds(10, 0, True)


def test_sample_indices_are_bin_centres():
    assert sample_indices(0, 16, 1) == [8]
    assert sample_indices(0, 16, 2) == [4, 12]
    assert sample_indices(32, 40, 16) == list(range(32, 40))  # fewer frames than asked


def test_frame_labels_half_open_and_clipped():
    assert frame_labels(6, [(1, 3), (5, 9)]).tolist() == [0, 1, 1, 0, 0, 1]


def test_expand_scores_by_segment_lengths():
    out = expand_to_frames(np.array([0.1, 0.9]), [3, 2])
    assert out.tolist() == [0.1, 0.1, 0.1, 0.9, 0.9]
    with pytest.raises(ValueError):
        expand_to_frames(np.array([0.1]), [3, 2])

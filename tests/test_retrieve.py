import itertools

import numpy as np
import pytest

from synthvad.retrieve import positive_text, retrieval_scores, scene_subsample, select_top_k


def test_scores_follow_eq_2_to_4():
    v = np.array([[1.0, 0.0], [0.6, 0.8]])  # two unit image embeddings
    pos = np.array([[0.0, 1.0]])  # one class text
    neg = np.array([[1.0, 0.0], [0.0, 1.0]])  # two negatives
    score, s_pos, s_neg = retrieval_scores(v, pos, neg, lam=0.5)
    # image 0: s_pos = 0, s_neg = mean(1, 0) = 0.5, score = 0 - 0.25
    # image 1: s_pos = 0.8, s_neg = mean(0.6, 0.8) = 0.7, score = 0.8 - 0.35
    np.testing.assert_allclose(s_pos[:, 0], [0.0, 0.8])
    np.testing.assert_allclose(s_neg, [0.5, 0.7])
    np.testing.assert_allclose(score[:, 0], [-0.25, 0.45])
    no_neg, _, _ = retrieval_scores(v, pos, np.zeros((0, 2)), lam=0.5)
    np.testing.assert_allclose(no_neg[:, 0], [0.0, 0.8])


def test_positive_text_concatenates_class_and_phrases():
    assert (
        positive_text("road accident", "CCTV, fixed camera") == "road accident, CCTV, fixed camera"
    )


def test_scene_subsample_smooths_counts():
    scenes = np.array(["a"] * 16 + ["b"] * 4)
    rng = np.random.default_rng(0)
    assert scene_subsample(scenes, 1.0, rng).all()  # alpha 1: the pool is unchanged
    keep = scene_subsample(scenes, 0.0, rng)
    # alpha 0: equal shares ceil(20 * 1/2) = 10, capped at each scene's count
    assert keep[:16].sum() == 10 and keep[16:].sum() == 4
    keep = scene_subsample(scenes, 0.5, rng)
    # alpha 0.5: weights 4 and 2 -> ceil(20 * 4/6) = 14 and ceil(20 * 2/6) = 7 -> capped 4
    assert keep[:16].sum() == 14 and keep[16:].sum() == 4


def test_top_k_with_scene_quota():
    scores = np.array([0.9, 0.8, 0.7, 0.1, 0.05])
    scenes = np.array(["a", "a", "a", "b", "c"])
    assert select_top_k(scores, scenes, 3, 0).tolist() == [0, 1, 2]
    # one per scene reserved (0, 3, 4), already K=3
    assert select_top_k(scores, scenes, 3, 1).tolist() == [0, 3, 4]
    # K=4: reserved 0, 3, 4 then the best remaining (1), ranked after them
    assert select_top_k(scores, scenes, 4, 1).tolist() == [0, 3, 4, 1]
    # more reserved than K: the best reserved win
    assert select_top_k(scores, scenes, 2, 1).tolist() == [0, 3]


@pytest.mark.parametrize("min_per_scene", [0, 1, 2])
def test_raising_k_only_appends_ranks(min_per_scene):
    """Existing ranks keep their frames, so adding PA-VAD clips regenerates none."""
    rng = np.random.default_rng(0)
    scores, scenes = rng.random(40), rng.choice(list("abcd"), 40)
    picks = [select_top_k(scores, scenes, k, min_per_scene).tolist() for k in range(1, 30)]
    for shorter, longer in itertools.pairwise(picks):
        assert longer[: len(shorter)] == shorter


@pytest.mark.parametrize("k", [1, 5])
def test_top_k_never_repeats(k):
    scores = np.linspace(1, 0, 5)
    out = select_top_k(scores, np.array(list("aabbc")), k, 2)
    assert len(out) == len(set(out.tolist())) == k

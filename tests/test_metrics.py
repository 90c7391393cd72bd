"""Metrics and score/ground-truth alignment on tiny hand examples."""

from __future__ import annotations

import numpy as np
import pytest

from synthvad.metrics import (
    align_scores_to_ground_truth,
    frame_metrics,
    summarize_seeds,
    video_auc,
)


def test_frame_metrics_hand_example():
    # video a (abnormal): frames 0-3, anomaly on frames 2-3; video b (normal): frames 0-1
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.6, 0.2])
    labels = np.array([0, 0, 1, 1, 0, 0])
    ids = np.array(["a", "a", "a", "a", "b", "b"])
    got = frame_metrics(scores, labels, ids, {"a": 1, "b": 0})
    # AUC: positive 0.8 beats all 4 negatives; 0.35 beats 0.1 and 0.2 only -> (4 + 2) / 8
    assert got["auc"] == pytest.approx(6 / 8)
    # AP, ranking 0.8(+) 0.6 0.4 0.35(+): precision at the hits 1/1 and 2/4 -> (1 + 0.5) / 2
    assert got["ap"] == pytest.approx(0.75)
    # abnormal video only: negatives 0.1, 0.4; positives 0.35 (beats 1), 0.8 (beats 2) -> 3 / 4
    assert got["auc_abnormal_videos"] == pytest.approx(0.75)
    # normal video b: 0.6 >= 0.5 alarms, 0.2 does not -> 1 / 2
    assert got["false_alarm_rate"] == pytest.approx(0.5)
    assert (got["n_frames"], got["n_abnormal_frames"], got["n_videos"]) == (6, 2, 2)


def test_frame_metrics_undefined_metrics_are_none():
    # only normal frames: no AUC, no AP, no abnormal videos
    got = frame_metrics(np.array([0.2, 0.7]), np.array([0, 0]), np.array(["n", "n"]), {"n": 0})
    assert got["auc"] is None and got["ap"] is None and got["auc_abnormal_videos"] is None
    assert got["false_alarm_rate"] == pytest.approx(0.5)
    # only abnormal videos: no false-alarm rate
    got = frame_metrics(np.array([0.2, 0.7]), np.array([0, 1]), np.array(["a", "a"]), {"a": 1})
    assert got["false_alarm_rate"] is None and got["auc"] == pytest.approx(1.0)


def test_frame_metrics_rejects_bad_input():
    with pytest.raises(ValueError, match="differ"):
        frame_metrics(np.zeros(2), np.zeros(3), np.array(["a", "a"]), {"a": 0})
    with pytest.raises(ValueError, match="no video-level label"):
        frame_metrics(np.zeros(1), np.zeros(1), np.array(["x"]), {"a": 0})
    with pytest.raises(ValueError, match="NaN"):
        frame_metrics(np.array([np.nan]), np.zeros(1), np.array(["a"]), {"a": 0})


def test_video_auc():
    # pairs (abnormal, normal): (0.9, 0.3) ok, (0.9, 0.6) ok, (0.5, 0.3) ok, (0.5, 0.6) wrong
    assert video_auc([0.9, 0.5, 0.3, 0.6], [1, 1, 0, 0]) == pytest.approx(3 / 4)
    assert video_auc([0.9, 0.5], [1, 1]) is None


def test_align_expands_last_partial_segment():
    # 37 frames, length 16, keep partial: segments [0,16), [16,32), [32,37)
    scores, labels = align_scores_to_ground_truth(
        "v", np.array([0.1, 0.2, 0.9]), [16, 16, 5], [(30, 40)], 37, 16, True
    )
    assert len(scores) == 37 and len(labels) == 37
    assert scores[:16].tolist() == [0.1] * 16
    assert scores[16:32].tolist() == [0.2] * 16
    assert scores[32:].tolist() == [0.9] * 5
    # anomaly [30, 40) clipped to the 37 frames: frames 30..36
    assert np.flatnonzero(labels).tolist() == list(range(30, 37))


def test_align_drops_unscored_tail_frames_from_labels():
    # 37 frames without the partial segment: only 32 frames scored, labels over those only
    scores, labels = align_scores_to_ground_truth(
        "v", np.array([0.1, 0.2]), [16, 16], [(30, 40)], 37, 16, False
    )
    assert len(scores) == len(labels) == 32
    assert np.flatnonzero(labels).tolist() == [30, 31]


def test_align_raises_on_length_mismatch_naming_the_video():
    # features kept the partial segment, the config says drop it: 37 vs 32 frames
    with pytest.raises(ValueError, match="'clip_007'.*37 frames.*32 frames"):
        align_scores_to_ground_truth(
            "clip_007", np.array([0.1, 0.2, 0.9]), [16, 16, 5], [], 37, 16, False
        )
    with pytest.raises(ValueError, match="'clip_008'"):
        align_scores_to_ground_truth("clip_008", np.array([0.1]), [16], [], 40, 16, True)


def test_summarize_seeds_mean_sample_std_and_shared_sizes():
    per_seed = [
        {"seed": 0, "auc": 0.7, "ap": 0.3, "auc_abnormal_videos": None, "false_alarm_rate": 0.1,
         "n_frames": 50, "n_abnormal_frames": 5, "n_videos": 2, "best_epoch": 3, "n_val": 4,
         "n_train_real_normal": 8, "val_metric": "objective", "alpha_final": 0.4},
        {"seed": 1, "auc": 0.9, "ap": 0.5, "auc_abnormal_videos": None, "false_alarm_rate": 0.3,
         "n_frames": 50, "n_abnormal_frames": 5, "n_videos": 2, "best_epoch": 9, "n_val": 4,
         "n_train_real_normal": 8, "val_metric": "objective", "alpha_final": 0.6},
    ]  # fmt: skip
    got = summarize_seeds(per_seed)
    # mean (0.7 + 0.9) / 2; sample std sqrt(((0.1)^2 + (0.1)^2) / 1) = 0.1 * sqrt(2)
    assert got["auc"] == pytest.approx(0.8)
    assert got["auc_std"] == pytest.approx(0.1 * 2**0.5)
    assert got["false_alarm_rate"] == pytest.approx(0.2)
    assert got["auc_abnormal_videos"] is None and got["auc_abnormal_videos_std"] is None
    assert got["seeds"] == [0, 1] and got["best_epochs"] == [3, 9]
    assert got["alpha_final"] == pytest.approx(0.5)
    assert (got["n_frames"], got["n_train_real_normal"], got["n_val"]) == (50, 8, 4)
    assert len(got["per_seed"]) == 2
    one = summarize_seeds(per_seed[:1])
    assert one["auc"] == pytest.approx(0.7) and one["auc_std"] is None
    with pytest.raises(ValueError, match="n_frames"):
        summarize_seeds([per_seed[0], {**per_seed[1], "n_frames": 49}])


def test_subset_aucs_equal_sklearn_on_each_subset_with_ties():
    from sklearn.metrics import roc_auc_score

    from synthvad.metrics import subset_aucs

    rng = np.random.default_rng(3)
    scores = np.round(rng.random(5000), 2)  # many ties
    labels = (rng.random(5000) < 0.3 + 0.4 * scores).astype(int)
    subsets = {f"s{k}": rng.random(5000) < 0.5 for k in range(4)}
    subsets["all"] = np.ones(5000, dtype=bool)
    subsets["negatives only"] = labels == 0
    aucs = subset_aucs(labels, scores, subsets)
    for name, mask in subsets.items():
        if name == "negatives only":
            assert aucs[name] is None  # undefined with one class
        else:
            assert aucs[name] == pytest.approx(roc_auc_score(labels[mask], scores[mask]), abs=1e-12)
    # By hand: positives 0.5 and 0.9 against negatives 0.1 and 0.5: (1 + 0.5 + 1 + 1) / 4.
    hand = subset_aucs(np.array([0, 1, 0, 1]), np.array([0.1, 0.5, 0.5, 0.9]),
                       {"x": np.ones(4, dtype=bool)})  # fmt: skip
    assert hand["x"] == 0.875

"""Report figures: per-class AUC by hand, seed averaging, and PNGs for toy inputs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from synthvad.report_figures import (
    class_auc_table,
    mean_over_seeds,
    plot_class_auc,
    plot_roc_pr,
    plot_training_curves,
    seed_band,
)

# video -> [(score, label)] per frame, averaged over seeds.
FRAMES = {
    "n1": [(0.1, 0), (0.2, 0)],
    "n2": [(0.3, 0), (0.4, 0)],
    "a1": [(0.05, 0), (0.9, 1), (0.8, 1)],  # class A: positives above every negative
    "b1": [(0.35, 1), (0.15, 1), (0.5, 0)],  # class B
    "c1": [(0.6, 0), (0.7, 0)],  # class C: no abnormal frames
}
CLASSES = {"a1": "A", "b1": "B", "c1": "C", "n1": None}


def _scores(frames=FRAMES, seeds=2, shift: float = 0.0) -> pd.DataFrame:
    """Per-seed scores that differ between seeds (+-0.04) but average to the table's."""
    rows = []
    for seed in range(seeds):
        for video_id, values in frames.items():
            for frame, (score, label) in enumerate(values):
                offset = 0.0 if seeds == 1 else (0.04 if (seed + frame) % 2 else -0.04)
                rows.append((seed, video_id, frame, score + shift + offset, label))
    return pd.DataFrame(rows, columns=["seed", "video_id", "frame", "score", "label"])


def test_mean_over_seeds_averages_scores_and_keeps_labels():
    mean = mean_over_seeds(_scores())
    assert list(mean.columns) == ["video_id", "frame", "score", "label"]
    assert len(mean) == sum(len(v) for v in FRAMES.values())
    b1 = mean[mean["video_id"] == "b1"].sort_values("frame")
    np.testing.assert_allclose(b1["score"], [0.35, 0.15, 0.5])
    assert b1["label"].tolist() == [1, 1, 0]


def test_mean_over_seeds_rejects_disagreeing_labels():
    scores = _scores()
    scores.loc[0, "label"] = 1 - scores.loc[0, "label"]
    with pytest.raises(ValueError, match="disagree"):
        mean_over_seeds(scores)


def test_class_auc_table_by_hand():
    reversed_frames = {v: [(1 - s, y) for s, y in f] for v, f in FRAMES.items()}
    table = class_auc_table(
        {"good": _scores(), "reversed": _scores(reversed_frames, seeds=1)}, CLASSES
    )
    assert list(table.index) == ["good", "reversed"]
    assert list(table.columns) == ["A", "B", "C"]
    # A: positives 0.9, 0.8 against negatives n1, n2 and a1's 0.05: every pair ranked right.
    assert table.loc["good", "A"] == pytest.approx(1.0)
    # B: positives 0.35, 0.15 against 0.1, 0.2, 0.3, 0.4, 0.5: 3 + 1 of 10 pairs.
    assert table.loc["good", "B"] == pytest.approx(0.4)
    assert table.loc["reversed", "A"] == pytest.approx(0.0)
    assert table.loc["reversed", "B"] == pytest.approx(0.6)
    # C's frames are all 0 and C videos are not normal videos: no AUC.
    assert table["C"].isna().all()


def test_class_auc_table_without_classes():
    table = class_auc_table({"only": _scores(seeds=1)}, {"n1": None})
    assert table.shape == (1, 0)


def _histories(n: int, seeds: int) -> dict[str, pd.DataFrame]:
    histories = {}
    for i in range(n):
        rows = []
        for seed in range(seeds):
            for epoch in range(1, 6):
                row = {"seed": seed, "epoch": epoch, "loss": 1 / epoch + 0.05 * seed}
                if i % 3 == 0:  # supervised, learnable alpha
                    row |= {"val_auc": 0.6 + 0.05 * epoch, "val_loss": 0.5, "alpha": 0.1 * epoch}
                elif i % 3 == 1:  # unsupervised
                    row |= {"dropped": 0.1, "val_loss": 0.3 / epoch}
                else:  # no validation, constant alpha, all-NaN val_auc
                    row |= {"val_auc": math.nan, "alpha": 0.5}
                rows.append(row)
        histories[f"exp{i}"] = pd.DataFrame(rows)
    return histories


def test_seed_band_averages_over_seeds():
    band = seed_band(_histories(1, 2)["exp0"], "loss")
    assert band["epoch"].tolist() == [1, 2, 3, 4, 5]
    np.testing.assert_allclose(band["mean"], [1 / e + 0.025 for e in range(1, 6)])
    np.testing.assert_allclose(band["max"] - band["min"], 0.05)
    history = _histories(3, 1)["exp2"]
    assert seed_band(history, "val_auc").empty
    assert seed_band(history, "missing").empty


def _assert_png(path):
    assert path.is_file() and path.stat().st_size > 5_000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("n", "seeds"), [(3, 2), (1, 1)])
def test_plots_write_pngs(tmp_path, n, seeds):
    scores = {f"exp{i}": _scores(seeds=seeds, shift=0.01 * i) for i in range(n)}
    plot_roc_pr(tmp_path / "roc.png", scores)
    _assert_png(tmp_path / "roc.png")
    assert plot_class_auc(tmp_path / "classes.png", class_auc_table(scores, CLASSES))
    _assert_png(tmp_path / "classes.png")
    plot_training_curves(tmp_path / "curves.png", _histories(n, seeds))
    _assert_png(tmp_path / "curves.png")


def test_roc_pr_many_experiments_and_one_class(tmp_path):
    scores = {f"experiment {i}": _scores(seeds=1, shift=0.01 * i) for i in range(18)}
    scores["no positives"] = _scores({"n1": FRAMES["n1"]}, seeds=1)
    plot_roc_pr(tmp_path / "roc.png", scores)
    _assert_png(tmp_path / "roc.png")


def test_plot_class_auc_without_classes(tmp_path):
    table = class_auc_table({"only": _scores(seeds=1)}, {})
    assert not plot_class_auc(tmp_path / "classes.png", table)
    assert not (tmp_path / "classes.png").exists()


def test_training_curves_without_plottable_columns(tmp_path):
    history = pd.DataFrame({"seed": [0, 0], "epoch": [1, 2], "val_auc": [math.nan] * 2})
    plot_training_curves(tmp_path / "curves.png", {"empty": history})
    assert (tmp_path / "curves.png").stat().st_size > 0

"""make_report from two fake experiments."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synthvad.io.atomic import write_json, write_parquet
from synthvad.metrics import summarize_seeds
from synthvad.report import make_report as _make_report

VIDEOS = {"test_a": (40, 1), "test_b": (32, 0)}  # video -> (n_frames, label)


def _fake_run(root: Path, name: str, aucs: list[float], shift: float) -> dict[str, str]:
    """A run of len(aucs) seeds: frame scores per seed (seed column) and summary metrics."""
    frames = []
    for seed in range(len(aucs)):
        for video_id, (n_frames, label) in VIDEOS.items():
            for frame in range(n_frames):
                anomalous = int(label == 1 and 20 <= frame < 30)
                score = min(1.0, 0.2 + shift + 0.1 * seed + 0.6 * anomalous)
                frames.append((seed, video_id, frame, score, anomalous))
    scores = pd.DataFrame(frames, columns=["seed", "video_id", "frame", "score", "label"])
    per_seed = [
        {"seed": s, "auc": a, "ap": a - 0.1, "auc_abnormal_videos": None, "false_alarm_rate": 0.0,
         "n_frames": 72, "n_abnormal_frames": 10, "n_videos": 2, "best_epoch": 7 + s,
         "val_metric": "objective", "alpha_final": 0.5, "n_val": 4,
         "n_train_real_normal": 10, "n_train_real_abnormal": 0 if "syn" in name else 10,
         "n_train_synthetic_normal": 0, "n_train_synthetic_abnormal": 5 if "syn" in name else 0}
        for s, a in enumerate(aucs)
    ]  # fmt: skip
    metrics = {
        "experiment": name,
        "detector": "topk_bce",
        "model": "topk_bce",
        "real_abnormal": "syn" not in name,
        "synthetic": ["gvvad"] if "syn" in name else [],
        "alpha": 0.5,
        "unsupervised": False,
        **summarize_seeds(per_seed),
    }
    paths = {"metrics": str(root / name / "metrics.json"), "scores": str(root / name / "s.parquet")}
    paths["history"] = str(root / name / "history.csv")
    write_json(metrics, paths["metrics"])
    history = [{"seed": s, "epoch": e, "loss": 1.0 / e, "val_auc": 0.5 + 0.02 * e, "alpha": 0.5}
               for s in range(len(aucs)) for e in (1, 2, 3)]  # fmt: skip
    pd.DataFrame(history).to_csv(paths["history"], index=False)
    write_parquet(scores, paths["scores"])
    return paths


def make_report(runs, index, gt, csv, md, plots, warnings, **kwargs):
    """make_report with its HTML and figure outputs beside the Markdown table."""
    out = Path(md).parent
    kwargs.setdefault("detection_dir", str(out / "detection"))
    kwargs.setdefault("landing_html", str(out / "landing.html"))
    kwargs.setdefault("summary_html", str(out / "summary.html"))
    _make_report(runs, index, gt, csv, md, plots, warnings, **kwargs)


@pytest.fixture()
def inputs(tmp_path):
    runs = {
        "baseline": _fake_run(tmp_path, "baseline", [0.81], 0.0),
        "syn_gvvad": _fake_run(tmp_path, "syn_gvvad", [0.75, 0.79], 0.1),
    }
    index = pd.DataFrame(
        [
            {"video_id": v, "split": "test", "label": lab, "class": None, "n_frames": n}
            for v, (n, lab) in VIDEOS.items()
        ]
    )
    index.to_parquet(tmp_path / "index.parquet", index=False)
    gt = pd.DataFrame([{"video_id": "test_a", "start": 20, "end": 30}])
    gt.to_parquet(tmp_path / "gt.parquet", index=False)
    return tmp_path, runs


def test_make_report_writes_table_markdown_and_plots(inputs):
    root, runs = inputs
    out = root / "report"
    make_report(
        runs,
        str(root / "index.parquet"),
        str(root / "gt.parquet"),
        str(out / "table.csv"),
        str(out / "table.md"),
        str(out / "plots"),
        ["CLIP weights are RANDOM (demo)"],
    )
    table = pd.read_csv(out / "table.csv")
    assert table["experiment"].tolist() == ["baseline", "syn_gvvad"]
    # mean and sample std over seeds: (0.75 + 0.79) / 2; sqrt(2 * 0.02^2 / 1)
    assert table["auc"].tolist() == pytest.approx([0.81, 0.77])
    assert table["auc_std"].isna().tolist() == [True, False]  # one seed has no spread
    assert table.loc[1, "auc_std"] == pytest.approx(0.02 * 2**0.5)
    assert table["best_epochs"].tolist() == ["7", "7/8"]
    assert table["n_seeds"].tolist() == [1, 2]
    assert table["trains_on"].tolist() == [
        "real normal + real abnormal",
        "real normal + gvvad synthetic (alpha 0.5)",
    ]

    md = (out / "table.md").read_text()
    assert md.index("CLIP weights are RANDOM (demo)") < md.index("| experiment")
    assert "| baseline | topk_bce (topk_bce) |" in md
    assert "| 0.810 |" in md and "| 0.770 ± 0.028 |" in md
    assert "n/a" in md  # auc_abnormal_videos was None

    pngs = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert pngs == ["abnormal__abnormal__test_a.png", "normal__normal__test_b.png"]
    figures = sorted(p.name for p in (out / "detection").glob("*.png"))
    assert figures == ["metrics.png", "roc_pr.png", "training.png"]  # no classes, no scaling line
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp dir left

    # The landing fragment and the sortable page: warnings first, one row per experiment,
    # metric cells sortable by their mean.
    landing = (out / "landing.html").read_text()
    assert landing.index("CLIP weights are RANDOM") < landing.index('id="synthvad-comparison"')
    assert landing.count("<tr>") == 3 and '<td data-sort="0.770000">0.770 ± 0.028</td>' in landing
    assert "<b>syn_gvvad</b>: real normal + gvvad synthetic (alpha 0.5)" in landing
    page = (out / "summary.html").read_text()
    assert page.startswith("<!doctype html>") and "addEventListener" in page


def test_make_report_replaces_an_old_plot_dir(inputs):
    root, runs = inputs
    plots = root / "plots"
    plots.mkdir()
    (plots / "stale.png").write_bytes(b"old")
    make_report(
        runs,
        str(root / "index.parquet"),
        str(root / "gt.parquet"),
        str(root / "t.csv"),
        str(root / "t.md"),
        str(plots),
        [],
    )
    assert not (plots / "stale.png").exists()
    assert (plots / "abnormal__abnormal__test_a.png").is_file()


def test_make_report_rejects_runs_tested_on_different_frames(inputs):
    root, runs = inputs
    other = _fake_run(root, "other", [0.5], 0.0)
    metrics = pd.read_json(other["metrics"], typ="series").to_dict()
    write_json({**metrics, "n_frames": 71}, other["metrics"])
    with pytest.raises(ValueError, match="different frames"):
        make_report(
            {**runs, "other": other},
            str(root / "index.parquet"),
            str(root / "gt.parquet"),
            str(root / "t.csv"),
            str(root / "t.md"),
            str(root / "plots"),
            [],
        )
    assert not (root / "t.csv").exists()


def test_plots_show_the_mean_over_seeds(inputs):
    from synthvad.report_figures import mean_over_seeds

    _, runs = inputs
    scores = pd.read_parquet(runs["syn_gvvad"]["scores"])  # seed 1 scores 0.1 above seed 0
    mean = mean_over_seeds(scores)
    first = mean[(mean.video_id == "test_b") & (mean.frame == 0)]["score"].item()
    assert first == pytest.approx(0.2 + 0.1 + 0.05)
    assert len(mean) == len(scores) // 2


def test_scaling_figure_draws_a_line_per_detector_and_synthetic_set(inputs, tmp_path):
    import json

    from synthvad.report import metrics_table, plot_scaling

    root, _ = inputs
    runs = {}
    for name, n, synthetic in (
        ("r2", 2, []),
        ("r4", 4, []),
        ("g2", 2, ["gvvad"]),
        ("g4", 4, ["gvvad"]),
    ):
        paths = _fake_run(root, name, [0.7, 0.72], 0.0)
        metrics = json.loads(Path(paths["metrics"]).read_text())
        metrics.update(real_abnormal=n, synthetic=synthetic, n_train_real_abnormal=n - 1)
        metrics["n_val_real_abnormal"] = 1
        write_json(metrics, paths["metrics"])
        runs[name] = paths
    table = metrics_table(runs)
    assert table["real_abnormal_videos"].tolist() == [2, 4, 2, 4]
    assert (
        table["scaling_line"].tolist()
        == ["topk_bce, real only"] * 2 + ["topk_bce, + gvvad (alpha 0.5)"] * 2
    )
    assert plot_scaling(tmp_path / "scaling.png", table)
    assert (tmp_path / "scaling.png").stat().st_size > 10_000
    # One point per line: nothing to draw.
    assert not plot_scaling(tmp_path / "none.png", table.iloc[[0, 2]])
    assert not (tmp_path / "none.png").exists()


def test_envelope_keeps_each_bins_extremes_in_order():
    from synthvad.report import envelope

    x = np.arange(10)
    y = np.array([5, 1, 9, 2, 2, 2, 7, 0, 3, 4], dtype=float)
    short_x, short_y = envelope(x, y, max_points=20)
    assert short_x is x and short_y is y  # short curves are drawn as they are
    # 4 points: bins of ceil(10 / 2) = 5 frames, each keeps its min and max in frame order.
    ex, ey = envelope(x, y, max_points=4)
    assert ex.tolist() == [1, 2, 6, 7] and ey.tolist() == [1, 9, 7, 0]
    long_y = np.random.default_rng(0).random(50_001)
    lx, ly = envelope(np.arange(50_001), long_y)
    assert len(lx) <= 2000 and np.all(np.diff(lx) >= 0)
    assert ly.max() == long_y.max() and ly.min() == long_y.min()


def test_plots_drawn_by_processes_equal_the_serial_ones(inputs, tmp_path):
    from synthvad.report import _write_plots

    root, runs = inputs
    scores = {n: pd.read_parquet(p["scores"]).query("seed == 0") for n, p in runs.items()}
    index = pd.read_parquet(root / "index.parquet").set_index("video_id")
    many = {f"v{i:02d}": 40 for i in range(10)}  # enough videos for the process pool
    frames = pd.DataFrame(
        [(v, f, (f % 7) / 7) for v, n in many.items() for f in range(n)],
        columns=["video_id", "frame", "score"],
    )
    scores = {n: frames for n in scores}
    index = pd.DataFrame({"n_frames": 40, "label": 0, "class": None}, index=list(many))
    (tmp_path / "serial").mkdir()
    (tmp_path / "pool").mkdir()
    _write_plots(tmp_path / "serial", scores, index, {"v01": [(5, 9)]}, workers=1)
    _write_plots(tmp_path / "pool", scores, index, {"v01": [(5, 9)]}, workers=2)
    serial = sorted(p.name for p in (tmp_path / "serial").iterdir())
    assert serial == sorted(p.name for p in (tmp_path / "pool").iterdir()) and len(serial) == 10
    for name in serial:
        assert (tmp_path / "serial" / name).read_bytes() == (tmp_path / "pool" / name).read_bytes()


def test_steps_keep_the_change_points_and_the_last():
    from synthvad.report import steps

    x = np.arange(8)
    y = np.array([0.2, 0.2, 0.2, 0.7, 0.7, 0.1, 0.1, 0.1])
    sx, sy = steps(x, y)
    assert sx.tolist() == [0, 3, 5, 7] and sy.tolist() == [0.2, 0.7, 0.1, 0.1]

"""Comparison of experiments: metrics table (CSV, Markdown) and per-video score plots."""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure  # object API: no pyplot state, Agg canvas for PNG

from synthvad import runtimes
from synthvad.io.atomic import atomic_dir, write_text
from synthvad.metrics import SEED_METRICS
from synthvad.segments import read_intervals

TABLE_COLUMNS = (
    "detector",
    "model",
    "trains_on",
    "n_seeds",
    *(c for key in SEED_METRICS for c in (key, f"{key}_std")),
    "n_train_real_normal",
    "n_train_real_abnormal",
    "real_abnormal_videos",
    "n_train_synthetic_normal",
    "n_train_synthetic_abnormal",
    "n_val",
    "best_epochs",
    "val_metric",
    "alpha",
    "alpha_final",
    "n_videos",
    "n_frames",
)
# Markdown headers of the mean +- std cells.
METRIC_TITLES = {
    "auc": "frame AUC",
    "ap": "AP",
    "auc_abnormal_videos": "AUC, abnormal videos",
    "false_alarm_rate": "false alarms, normal videos",
}


def trains_on(metrics: Mapping) -> str:
    """Human description of an experiment's training data from its metrics.json."""
    parts = ["real normal"]
    real_abnormal = metrics.get("real_abnormal")
    if real_abnormal is True:
        parts.append("real abnormal")
    elif real_abnormal:  # a number of videos
        parts.append(f"{real_abnormal} real abnormal")
    synthetic = list(metrics.get("synthetic") or [])
    if synthetic:
        parts.append(f"{' + '.join(synthetic)} synthetic (alpha {metrics.get('alpha')})")
    text = " + ".join(parts)
    return f"{text}, labels removed" if metrics.get("unsupervised") else text


def scaling_line(metrics: Mapping) -> str | None:
    """The data-scaling figure's line an experiment belongs to (same detector, synthetic
    data and alpha; the number of real abnormal videos varies along it), or None for
    experiments without labels or without real abnormal videos."""
    if metrics.get("unsupervised") or not metrics.get("real_abnormal"):
        return None
    synthetic = list(metrics.get("synthetic") or [])
    data = f"+ {' + '.join(synthetic)} (alpha {metrics.get('alpha')})" if synthetic else "real only"
    return f"{metrics.get('detector')}, {data}"


def metrics_table(runs: Mapping[str, Mapping[str, str]]) -> pd.DataFrame:
    """One row per experiment (in `runs` order) with the TABLE_COLUMNS of its metrics.json."""
    rows = []
    for name, paths in runs.items():
        metrics = json.loads(Path(paths["metrics"]).read_text())
        row = {"experiment": name, **{c: metrics.get(c) for c in TABLE_COLUMNS}}
        row["trains_on"] = trains_on(metrics)
        # Real abnormal videos the experiment may use: its training and validation share.
        row["real_abnormal_videos"] = sum(
            int(metrics.get(f"n_{part}_real_abnormal") or 0) for part in ("train", "val")
        )
        row["scaling_line"] = scaling_line(metrics)
        epochs = metrics.get("best_epochs")
        row["best_epochs"] = None if epochs is None else "/".join(str(e) for e in epochs)
        rows.append(row)
    # Object dtype keeps counts as ints and missing values as None (not NaN floats).
    table = pd.DataFrame(rows, columns=["experiment", *TABLE_COLUMNS, "scaling_line"], dtype=object)
    # Metrics over different test frames are not comparable.
    tested = table[["n_videos", "n_frames"]].drop_duplicates()
    if len(tested) > 1:
        raise ValueError(f"experiments were tested on different frames:\n{table.to_string()}")
    return table


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _cell(value: object) -> str:
    if _missing(value):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _mean_std(mean: object, std: object) -> str:
    if _missing(mean):
        return "n/a"
    return f"{mean:.3f}" if _missing(std) else f"{mean:.3f} ± {std:.3f}"


def markdown_table(table: pd.DataFrame, warnings: list[str]) -> str:
    lines = ["# Detector comparison", ""]
    lines += [f"> **Warning:** {w}" for w in warnings]
    if warnings:
        lines.append("")
    headers = ["experiment", "detector", "trains on", "seeds", *METRIC_TITLES.values()]
    headers += ["train videos (normal/abnormal, real + synthetic)", "best epochs", "alpha final"]
    lines.append("| " + " | ".join(headers) + " |")
    lines.append("|" + "---|" * len(headers))
    for row in table.to_dict("records"):
        counts = (
            f"{row['n_train_real_normal']}/{row['n_train_real_abnormal']} + "
            f"{row['n_train_synthetic_normal']}/{row['n_train_synthetic_abnormal']}"
        )
        cells = [row["experiment"], f"{row['detector']} ({row['model']})", row["trains_on"]]
        cells.append(_cell(row["n_seeds"]))
        cells += [_mean_std(row[key], row[f"{key}_std"]) for key in METRIC_TITLES]
        cells += [counts, _cell(row["best_epochs"]), _cell(row["alpha_final"])]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Frame-level metrics on the real test split, mean ± sample std over seeds; each "
        "seed's epoch was selected on its validation split of the training videos, never "
        "on the test split.",
    ]
    return "\n".join(lines) + "\n"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


def _file_name(video_id: str, label: int | None = None, cls: str | None = None) -> str:
    """`{abnormal|normal}__{class}__{video}.png`: the report files the plots by kind and
    class (its subcategories and search labels come from these three parts)."""
    kind = "abnormal" if label else "normal"
    return f"{kind}__{_safe(cls or kind)}__{_safe(video_id)}.png"


# Points per curve in a per-video plot: about two per pixel column of its 1000-px axes.
MAX_CURVE_POINTS = 2000


def envelope(x: np.ndarray, y: np.ndarray, max_points: int = MAX_CURVE_POINTS):
    """Min-max decimation: a curve of at most `max_points` points that draws like the
    original at plot resolution (each bin of consecutive points keeps its lowest and its
    highest point, in their order), so a 50,000-frame video plots as fast as a short one."""
    n = len(y)
    if n <= max_points:
        return x, y
    size = math.ceil(n / (max_points // 2))
    bins = math.ceil(n / size)
    padded = np.concatenate([y, np.full(bins * size - n, np.nan)]).reshape(bins, size)
    start = np.arange(bins) * size
    lowest = start + np.nanargmin(padded, axis=1)
    highest = start + np.nanargmax(padded, axis=1)
    keep = np.stack([np.minimum(lowest, highest), np.maximum(lowest, highest)], axis=1).ravel()
    return x[keep], y[keep]


def steps(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The points where y changes, and the last one: drawn as steps (steps-post), the same
    curve as every frame's, with two points per 16-frame segment instead of sixteen."""
    if len(y) <= 2:
        return x, y
    keep = np.ones(len(y), dtype=bool)
    keep[1:-1] = y[1:-1] != y[:-2]
    return x[keep], y[keep]


class VideoPlotter:
    """One figure redrawn for every test video: the experiments' score curves (mean over
    seeds) and the ground-truth intervals shaded. Reusing the axes, ticks and legend
    halves the cost of a plot, which matters with 290 of them."""

    def __init__(self, names: list[str]) -> None:
        from matplotlib.patches import Patch

        columns = 1 if len(names) <= 10 else 2
        rows = math.ceil((len(names) + 1) / columns)  # + the ground-truth entry
        # Fixed margins, legend to the right (about 0.07 in per character of the longest
        # name, + the handle): a layout engine would cost more than the drawing.
        longest = max([len("ground truth"), *(len(str(name)) for name in names)])
        legend_in = columns * (0.8 + 0.07 * longest)
        width, height = 8.0 + legend_in, max(3.2, 0.5 + 0.19 * rows)
        self.fig = Figure(figsize=(width, height))
        self.fig.subplots_adjust(left=0.7 / width, right=1 - legend_in / width,
                                 bottom=0.5 / height, top=1 - 0.35 / height)  # fmt: skip
        self.ax = self.fig.add_subplot()
        palette = colormaps["tab10" if len(names) <= 10 else "tab20"]
        self.lines = {
            name: self.ax.plot([], [], label=name, lw=1.2, color=palette(i % palette.N),
                               drawstyle="steps-post")[0]
            for i, name in enumerate(names)
        }  # fmt: skip
        truth = Patch(color="tab:red", alpha=0.15, label="ground truth")
        self.ax.set_ylim(0, 1.02)
        self.ax.set_xlabel("frame")
        self.ax.set_ylabel("anomaly score (mean over seeds)")
        self.ax.legend(handles=[truth, *self.lines.values()], loc="upper left",
                       bbox_to_anchor=(1.01, 1.0), fontsize="small", ncols=columns)  # fmt: skip

    def draw(
        self,
        path: Path,
        video_id: str,
        curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
        intervals: list[tuple[int, int]],
        n_frames: int | None,
    ) -> None:
        """Write the plot of one video; `curves`: experiment -> (frames, scores), already
        reduced to what draws (`envelope(*steps(...))`, done once by `_write_plots`)."""
        unknown = set(curves) - set(self.lines)
        if unknown:
            raise ValueError(f"no curve for experiments {sorted(unknown)}")
        last = 1
        for name, line in self.lines.items():
            frames, scores = curves.get(name, (np.empty(0), np.empty(0)))
            line.set_data(frames, scores)
            last = max(last, int(frames[-1]) + 1 if len(frames) else 0)
        spans = [self.ax.axvspan(s, e, color="tab:red", alpha=0.15) for s, e in intervals]
        self.ax.set_xlim(0, n_frames or last)
        self.ax.set_title(video_id)
        # zlib level 1: a fifth less time per plot than the default 6, 5% larger files.
        self.fig.savefig(path, dpi=100, pil_kwargs={"compress_level": 1})
        for span in spans:
            span.remove()


def plot_metrics(path: Path, table: pd.DataFrame) -> None:
    """Grouped bars of frame AUC and AP per experiment, std over seeds as error bars."""
    fig = Figure(figsize=(max(4.0, 0.9 * len(table) + 2), 3.8), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(table))
    for offset, column in ((-0.2, "auc"), (0.2, "ap")):
        values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float)
        # One seed has no std: NaN draws no error bar at all (0 would draw a flat cap).
        spread = pd.to_numeric(table[f"{column}_std"], errors="coerce").to_numpy(dtype=float)
        ax.bar(x + offset, values, width=0.4, yerr=spread, capsize=2, label=column.upper())
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")  # chance level of the AUC
    ax.set_xticks(x, table["experiment"].tolist(), rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("frame-level metric")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.savefig(path, dpi=100)


def plot_scaling(path: Path, table: pd.DataFrame) -> bool:
    """Frame AUC against the number of real abnormal training videos, one line per
    detector and synthetic set (mean ± std over seeds). Drawn only when some line has
    two or more points; returns whether it was."""
    lines = {
        name: rows.sort_values("real_abnormal_videos")
        for name, rows in table.dropna(subset=["scaling_line"]).groupby("scaling_line")
        if rows["real_abnormal_videos"].nunique() > 1
    }
    if not lines:
        return False
    fig = Figure(figsize=(6.4, 3.8), layout="constrained")
    ax = fig.add_subplot()
    for name, rows in lines.items():
        x = rows["real_abnormal_videos"].to_numpy(dtype=float)
        y = pd.to_numeric(rows["auc"], errors="coerce").to_numpy(dtype=float)
        spread = pd.to_numeric(rows["auc_std"], errors="coerce").to_numpy(dtype=float)
        ax.errorbar(x, y, yerr=spread, marker="o", capsize=3, label=name)
    ax.set_xscale("log", base=2)
    ticks = sorted({int(v) for rows in lines.values() for v in rows["real_abnormal_videos"]})
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.set_xlabel("real abnormal training videos (train + validation)")
    ax.set_ylabel("frame AUC (mean ± std over seeds)")
    ax.set_title("Data scaling: real abnormal videos, with and without synthetic clips")
    ax.legend(loc="lower right", fontsize="small")
    fig.savefig(path, dpi=100)
    return True


_PLOTTER: VideoPlotter | None = None  # one per worker process


def _start_plotter(names: list[str]) -> None:
    global _PLOTTER
    _PLOTTER = VideoPlotter(names)


def _plot_job(job: tuple) -> None:
    assert _PLOTTER is not None
    _PLOTTER.draw(*job)


def _write_plots(
    out_dir: Path,
    scores: Mapping[str, pd.DataFrame],
    index: pd.DataFrame,
    intervals: dict[str, list[tuple[int, int]]],
    workers: int = 1,
    meanwhile: Callable[[], None] | None = None,
) -> None:
    """One PNG per test video: every experiment's scores (mean over seeds), drawn by
    `workers` processes (matplotlib holds the GIL); `meanwhile` runs here as they draw."""
    by_video: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for name, frames in scores.items():
        frame = frames["frame"].to_numpy()
        score = frames["score"].to_numpy()
        video = frames["video_id"].astype("category")  # integer codes compare fast
        ids, labels = video.cat.codes.to_numpy(), video.cat.categories
        # Rows are sorted by video: one slice per video.
        change = np.flatnonzero(ids[1:] != ids[:-1]) + 1
        for lo, hi in zip([0, *change], [*change, len(ids)], strict=True):
            if hi > lo:
                curve = envelope(*steps(frame[lo:hi], score[lo:hi]))
                by_video.setdefault(str(labels[ids[lo]]), {})[name] = curve

    def name(v: str) -> str:
        known = v in index.index
        label = int(index.loc[v, "label"]) if known else None
        cls = index.loc[v, "class"] if known else None
        return _file_name(v, label, None if pd.isna(cls) else str(cls))

    video_ids = sorted(by_video)
    names = {name(v) for v in video_ids}
    if len(names) != len(video_ids):
        raise ValueError("two test video ids map to the same plot file name")
    jobs = [
        (
            out_dir / name(v),
            v,
            {n: by_video[v][n] for n in scores if n in by_video[v]},
            intervals.get(v, []),
            int(index.loc[v, "n_frames"]) if v in index.index else None,
        )
        for v in video_ids
    ]
    names = list(scores)
    if workers <= 1 or len(jobs) < 8:
        plotter = VideoPlotter(names)
        for job in jobs:
            plotter.draw(*job)
        if meanwhile is not None:
            meanwhile()
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, context, _start_plotter, (names,)) as pool:
        done = pool.map(_plot_job, jobs, chunksize=max(1, len(jobs) // (4 * workers)))
        if meanwhile is not None:
            meanwhile()  # in this process, while the workers plot
        list(done)


def _write_detection_figures(
    out_dir: Path,
    runs: Mapping[str, Mapping[str, str]],
    frames: Mapping[str, pd.DataFrame],
    table: pd.DataFrame,
    index: pd.DataFrame,
) -> None:
    """Figures over experiments: metrics, data scaling, ROC/PR, per-class AUC, training.
    `frames`: each experiment's test frame scores, averaged over seeds."""
    from synthvad import report_figures

    plot_metrics(out_dir / "metrics.png", table)
    plot_scaling(out_dir / "scaling.png", table)
    report_figures.plot_roc_pr(out_dir / "roc_pr.png", frames)
    abnormal = index[index["label"] == 1]["class"].dropna()
    video_class = {str(v): str(c) for v, c in abnormal.items()}
    report_figures.plot_class_auc(
        out_dir / "class_auc.png", report_figures.class_auc_table(frames, video_class)
    )
    histories = {name: pd.read_csv(p["history"]) for name, p in runs.items() if p.get("history")}
    if histories:
        report_figures.plot_training_curves(out_dir / "training.png", histories)


HTML_COLUMNS = {"experiment": "experiment", "detector": "detector", "trains_on": "trains on",
                "n_seeds": "seeds", **METRIC_TITLES, "best_epochs": "best epochs",
                "alpha_final": "alpha final"}  # fmt: skip


def _html_rows(table: pd.DataFrame) -> tuple[str, str]:
    """(header cells, body rows) of the comparison table; metrics as mean ± std, the mean
    as the cell's sort key."""
    head = "".join(f"<th>{html.escape(t)}</th>" for t in HTML_COLUMNS.values())
    rows = []
    for row in table.to_dict("records"):
        cells = []
        for key in HTML_COLUMNS:
            if key in METRIC_TITLES:
                value = row[key]
                sort = "" if _missing(value) else f' data-sort="{float(value):.6f}"'
                text = _mean_std(value, row[f"{key}_std"])
            elif key == "detector":
                sort, text = "", f"{row['detector']} ({row['model']})"
            else:
                sort, text = "", _cell(row[key])
            cells.append(f"<td{sort}>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return head, "\n".join(rows)


def _warning_items(warnings: list[str]) -> str:
    return "".join(
        f'<p class="synthvad-warning"><b>Warning:</b> {html.escape(w)}</p>' for w in warnings
    )


def landing_fragment(
    table: pd.DataFrame, warnings: list[str], times: pd.DataFrame | None = None
) -> str:
    """The report's landing page body (included by workflow.rst): warnings, the comparison
    table, one line per experiment on what it trains on, and (folded) runtimes by rule."""
    head, body = _html_rows(table)
    lines = "".join(
        f"<li><b>{html.escape(r['experiment'])}</b>: {html.escape(str(r['trains_on']))}</li>"
        for r in table.to_dict("records")
    )
    style = (
        "<style>#synthvad-landing .synthvad-warning{color:#a00;margin:0.3em 0}"
        "#synthvad-comparison{border-collapse:collapse;font-size:0.85em;margin:0.5em 0}"
        "#synthvad-comparison th,#synthvad-comparison td{border:1px solid #ccc;"
        "padding:2px 6px;white-space:nowrap;text-align:left}"
        "#synthvad-comparison th{background:#f0f0f0}</style>"
    )
    return (
        f'{style}<div id="synthvad-landing">{_warning_items(warnings)}'
        '<div style="overflow-x:auto">'
        f'<table id="synthvad-comparison" class="synthvad-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
        "<p>Frame-level metrics on the real test split, mean ± sample std over seeds; each "
        "seed's epoch was chosen on its validation split. A sortable copy of the table is "
        "under Detection.</p>"
        f'<ul id="synthvad-experiments">{lines}</ul>{_runtimes_details(times)}</div>\n'
    )


def _runtimes_details(times: pd.DataFrame | None) -> str:
    if times is None or times.empty:
        return ""
    return (
        "<details><summary>Runtime and memory by rule</summary>"
        f"{runtimes.runtimes_html(times, 'synthvad-landing-runtimes')}</details>"
    )


SORT_SCRIPT = """
document.querySelectorAll("th").forEach((th, col) => th.addEventListener("click", () => {
  const body = th.closest("table").tBodies[0];
  const key = (tr) => { const td = tr.children[col]; const v = td.dataset.sort;
    return v === undefined ? td.textContent : parseFloat(v); };
  const up = th.dataset.order !== "asc"; th.dataset.order = up ? "asc" : "desc";
  [...body.rows].sort((a, b) => { const x = key(a), y = key(b);
    return (x > y ? 1 : x < y ? -1 : 0) * (up ? 1 : -1); }).forEach((tr) => body.appendChild(tr));
}));
"""


def sortable_page(table: pd.DataFrame, warnings: list[str]) -> str:
    """A self-contained HTML page of the comparison table; a click on a header sorts."""
    head, body = _html_rows(table)
    style = (
        "body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
        "th,td{border:1px solid #ccc;padding:3px 8px;text-align:left}"
        "th{cursor:pointer;background:#f0f0f0}.synthvad-warning{color:#a00}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Detector comparison</title>"
        f"<style>{style}</style></head><body><h1>Detector comparison</h1>{_warning_items(warnings)}"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        f"<p>Click a column header to sort.</p><script>{SORT_SCRIPT}</script></body></html>\n"
    )


def _number(value: object, digits: int = 2) -> str:
    return "–" if value is None else f"{float(value):.{digits}f}"


def generation_section(generation: Mapping) -> list[str]:
    """PA-VAD Table 3's layout: a row per synthetic method (and per class), FVD, FID, KVD, KID."""
    lines = ["", "## Generation quality (PA-VAD Table 3)", ""]
    lines += [
        "| synthetic data | class | clips | FVD ↓ | FID ↓ | KVD ↓ | KID ↓ |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in generation["rows"]:
        cells = [row["method"], row["class"], str(row["clips"])]
        cells += [_number(row["fvd"], 1), _number(row["fid"], 1)]
        cells += [_number(row["kvd"], 4), _number(row["kid"], 4)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", generation["note"]]
    return lines


def domain_gap_section(gap: Mapping) -> list[str]:
    """PA-VAD Table 1's layout: mean feature norm of real and pseudo anomalies, per class."""
    rows = gap["mean_norm"]
    groups = ["real_abnormal", "pseudo_abnormal", "real_normal", "pseudo_normal"]
    by = {(r["group"], r["class"]): r for r in rows}
    classes = ["all"] + sorted({r["class"] for r in rows if r["class"] not in (None, "all")})
    lines = ["", "## Feature norms of real and pseudo anomalies (PA-VAD Table 1)", ""]
    lines += ["| class | " + " | ".join(g.replace("_", " ") for g in groups) + " |"]
    lines += ["|---|" + "---|" * len(groups)]
    for cls in classes:
        cells = []
        for group in groups:
            r = by.get((group, cls))
            cells.append("–" if r is None else f"{r['mean_norm']:.2f} ({r['videos']})")
        lines.append(f"| {cls} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Mean L2 norm of training segment features (every crop), with the number of videos; "
        "the PCA of the same features is the domain-gap plot.",
    ]
    return lines


def make_report(
    runs: dict[str, dict[str, str]],
    index_path: str,
    ground_truth_path: str,
    out_table_csv: str,
    out_table_md: str,
    plot_dir: str,
    warnings: list[str],
    generation_path: str | None = None,
    domain_gap_path: str | None = None,
    gallery_preview_path: str | None = None,
    *,
    detection_dir: str,
    landing_html: str,
    summary_html: str,
    benchmarks_dir: str | None = None,
    runtimes_html: str | None = None,
    workers: int = 1,
) -> None:
    """Write the comparison table (CSV, Markdown, a sortable HTML page, and the HTML
    fragment of the report's landing page), plot_dir with one PNG per test video, and
    detection_dir with the figures over experiments.

    `runs` maps experiment name -> {"metrics": path, "scores": path, "history": path}.
    """
    if not runs:
        raise ValueError("no experiments to report")
    table = metrics_table(runs)
    index = pd.read_parquet(index_path, columns=["video_id", "n_frames", "label", "class"])
    index = index.set_index("video_id")
    intervals = read_intervals(ground_truth_path)
    from synthvad.report_figures import mean_over_seeds

    # Averaged over seeds once; every figure reads these (one row per test frame).
    # video_id as a categorical: millions of rows compare as integer codes.
    scores = {
        name: mean_over_seeds(pd.read_parquet(p["scores"], read_dictionary=["video_id"]))
        for name, p in runs.items()
    }

    with atomic_dir(plot_dir) as plots, atomic_dir(detection_dir) as figures:
        _write_plots(
            plots, scores, index, intervals, workers,
            meanwhile=lambda: _write_detection_figures(figures, runs, scores, table, index),
        )  # fmt: skip
    preview = Path(gallery_preview_path).read_text(encoding="utf-8") if gallery_preview_path else ""
    times = runtimes.runtime_table(runtimes.read_benchmarks(benchmarks_dir))
    if runtimes_html:
        write_text(runtimes.runtimes_page(times), runtimes_html)
    write_text(landing_fragment(table, warnings, times) + preview, landing_html)
    write_text(sortable_page(table, warnings), summary_html)

    write_text(table.drop(columns="scaling_line").to_csv(index=False), out_table_csv)
    text = markdown_table(table, warnings)
    extra: list[str] = []
    if generation_path:
        extra += generation_section(json.loads(Path(generation_path).read_text()))
    if domain_gap_path:
        extra += domain_gap_section(json.loads(Path(domain_gap_path).read_text()))
    write_text(text + "\n".join(extra) + ("\n" if extra else ""), out_table_md)

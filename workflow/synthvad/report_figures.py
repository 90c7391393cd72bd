"""Detection figures for the HTML report: ROC / precision-recall curves, frame AUC per
anomaly class, and training curves."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure  # object API: no pyplot state, Agg canvas for PNG
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import precision_recall_curve, roc_curve

from synthvad.metrics import _ap, _auc, subset_aucs

KEYS = ["video_id", "frame"]
# History columns that are not training-objective terms.
NOT_OBJECTIVE = {"seed", "epoch", "val_auc", "val_loss", "alpha", "dropped"}


def _key(column: pd.Series) -> np.ndarray:
    """A column as an array to compare and order by; a categorical as its codes (its own
    order, the one sort_values uses), since a million codes compare fast and strings not."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.cat.codes.to_numpy()
    return column.to_numpy()


def _sorted_unique(frames: pd.DataFrame) -> bool:
    """Rows strictly increasing in (video_id, frame) (a categorical video_id in its own
    order): sorted as sort_values sorts, no key twice."""
    ids = _key(frames["video_id"])
    frame = frames["frame"].to_numpy()
    same = ids[1:] == ids[:-1]
    return bool(np.all(np.where(same, frame[1:] > frame[:-1], ids[1:] > ids[:-1])))


def _aligned_seeds(frames: pd.DataFrame) -> list[pd.DataFrame] | None:
    """The per-seed tables when every seed scored the same frames in the same order (as
    the detect rule writes them), else None."""
    seeds = [g for _, g in frames.groupby("seed", sort=True)]
    first = [_key(seeds[0][key]) for key in KEYS]
    for other in seeds[1:]:
        if len(other) != len(seeds[0]) or not all(
            np.array_equal(_key(other[key]), known) for key, known in zip(KEYS, first, strict=True)
        ):
            return None
    return seeds


def mean_over_seeds(frames: pd.DataFrame) -> pd.DataFrame:
    """One row per (video_id, frame), sorted: the score averaged over seeds and the label
    (which every seed must agree on)."""
    columns = [*KEYS, "score", "label"]
    seeds = _aligned_seeds(frames) if "seed" in frames and len(frames) else None
    if seeds is not None:  # the common case, without a groupby over millions of rows
        labels = np.stack([s["label"].to_numpy() for s in seeds])
        if (labels != labels[0]).any():
            raise ValueError("seeds disagree on the label of some frames")
        mean = seeds[0][KEYS].reset_index(drop=True)
        mean["score"] = np.stack([s["score"].to_numpy(np.float64) for s in seeds]).mean(axis=0)
        mean["label"] = labels[0]
    elif "seed" not in frames and _sorted_unique(frames):
        return frames[columns].reset_index(drop=True)  # already one row per frame
    else:
        labels = frames.groupby(KEYS, sort=True, as_index=False, observed=True)["label"].agg(
            ["min", "max"]
        )
        if (labels["min"] != labels["max"]).any():
            raise ValueError("seeds disagree on the label of some frames")
        labels = labels.drop(columns="max").rename(columns={"min": "label"})
        # Seeds that scored other frames or another order, or repeated frames: by key.
        mean = frames.groupby(KEYS, sort=True, as_index=False, observed=True)["score"].mean()
        mean = mean.merge(labels, on=KEYS, how="inner", validate="one_to_one")
    if not _sorted_unique(mean):
        mean = mean.sort_values(KEYS, ignore_index=True)
    return mean[columns]


def thin(x: np.ndarray, y: np.ndarray, resolution: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """The points of a curve in [0, 1]^2 that move it by at least 1/resolution (plus the
    last): a ROC or PR curve of a million frames draws as fast as a short one and looks
    the same at plot resolution."""
    if len(x) <= 2:
        return x, y
    cells = np.stack([np.round(x * resolution), np.round(y * resolution)], axis=1)
    keep = np.ones(len(x), dtype=bool)
    keep[1:] = np.any(cells[1:] != cells[:-1], axis=1)
    keep[-1] = True
    return x[keep], y[keep]


def _palette(n: int) -> tuple:
    """Colours for n curves (tab10, or tab20 past 10); line styles repeat past 20."""
    palette = colormaps["tab10" if n <= 10 else "tab20"]
    styles = ("-", "--", ":", "-.")
    return tuple((palette(i % palette.N), styles[(i // palette.N) % 4]) for i in range(n))


def plot_roc_pr(path: Path, scores: Mapping[str, pd.DataFrame]) -> None:
    """ROC and precision-recall curves of the frame scores (mean over seeds), one curve
    per experiment, AUC / AP in the legend; chance diagonal and positive-rate baseline."""
    if not scores:
        raise ValueError("no experiments to plot")
    columns = 1 if len(scores) <= 20 else 2  # of the legend
    rows = math.ceil((len(scores) + 2) / columns)  # + the chance and baseline entries
    # Room for the legend: about 0.07 in per character of the longest label, + the handle.
    longest = max(len(str(name)) for name in scores) + 26
    width = 8.5 + columns * (0.7 + 0.07 * longest)
    fig = Figure(figsize=(width, max(4.4, 1.0 + 0.22 * rows)), layout="constrained")
    roc_ax, pr_ax = fig.subplots(1, 2)
    handles = []
    rates = set()
    for (name, frames), (color, style) in zip(scores.items(), _palette(len(scores)), strict=True):
        frames = mean_over_seeds(frames)
        labels = frames["label"].to_numpy(dtype=np.int64)
        values = frames["score"].to_numpy(dtype=np.float64)
        auc, ap = _auc(labels, values), _ap(labels, values)
        text = f"{name}  (AUC {'n/a' if auc is None else f'{auc:.3f}'}, "
        text += f"AP {'n/a' if ap is None else f'{ap:.3f}'})"
        handles.append(Line2D([], [], color=color, ls=style, lw=1.4, label=text))
        if len(labels):
            rates.add(round(float(labels.mean()), 6))
        if auc is None:  # one class only: neither curve is defined
            continue
        fpr, tpr, _ = roc_curve(labels, values)
        roc_ax.plot(*thin(fpr, tpr), color=color, ls=style, lw=1.4)
        precision, recall, _ = precision_recall_curve(labels, values)
        recall, precision = thin(recall, precision)
        pr_ax.plot(recall, precision, color=color, ls=style, lw=1.4, drawstyle="steps-post")
    roc_ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    handles.append(Line2D([], [], color="grey", lw=0.8, ls="--", label="chance (ROC)"))
    for rate in sorted(rates):
        pr_ax.axhline(rate, color="grey", lw=0.8, ls=":")
    if rates:
        text = ", ".join(f"{r:.3f}" for r in sorted(rates))
        handles.append(Line2D([], [], color="grey", lw=0.8, ls=":", label=f"positive rate {text}"))
    roc_ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate")
    roc_ax.set(ylabel="true positive rate", title="ROC, frame level")
    pr_ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="recall", ylabel="precision")
    pr_ax.set_title("Precision-recall, frame level")
    for ax in (roc_ax, pr_ax):
        ax.set_aspect("equal")
        ax.grid(alpha=0.3)
    fig.legend(handles=handles, loc="outside right upper", fontsize="small", ncols=columns)
    fig.savefig(path, dpi=100)


def _normal_videos(frames: pd.DataFrame, classed: set[str]) -> set[str]:
    """Videos whose frames are all label 0 and that have no anomaly class."""
    top = frames.groupby("video_id", observed=True)["label"].max()
    return {str(v) for v in top.index[top == 0]} - classed


def _frames_of(video_ids: pd.Series, videos: set[str]) -> np.ndarray:
    """Boolean mask of the rows whose video is in `videos` (a categorical by its codes)."""
    if isinstance(video_ids.dtype, pd.CategoricalDtype):
        wanted = np.append(np.isin(video_ids.cat.categories.astype(str), list(videos)), False)
        return wanted[video_ids.cat.codes.to_numpy()]  # code -1 (missing) -> the False
    return video_ids.astype(str).isin(videos).to_numpy()


def class_auc_table(
    scores: Mapping[str, pd.DataFrame], video_class: Mapping[str, str | None]
) -> pd.DataFrame:
    """Experiments x anomaly classes: frame AUC (mean score over seeds) on the frames of
    the class's abnormal test videos together with those of all normal test videos
    (all frames label 0, no class). NaN where a class has no abnormal frames."""
    by_class: dict[str, set[str]] = {}
    for video_id, name in video_class.items():
        if name is not None and not (isinstance(name, float) and math.isnan(name)):
            by_class.setdefault(str(name), set()).add(str(video_id))
    classes = sorted(by_class)
    classed = set().union(*by_class.values()) if by_class else set()
    table = pd.DataFrame(
        np.nan,
        index=pd.Index(list(scores), name="experiment"),
        columns=pd.Index(classes, name="class"),
        dtype=float,
    )
    for experiment, frames in scores.items():
        frames = mean_over_seeds(frames)
        normal = _frames_of(frames["video_id"], _normal_videos(frames, classed))
        subsets = {
            name: normal | _frames_of(frames["video_id"], by_class[name]) for name in classes
        }
        labels = frames["label"].to_numpy(np.int64)
        aucs = subset_aucs(labels, frames["score"].to_numpy(np.float64), subsets)
        for name, auc in aucs.items():
            if auc is not None and labels[subsets[name]].any():
                table.loc[experiment, name] = auc
    return table


def plot_class_auc(path: Path, table: pd.DataFrame) -> bool:
    """class_auc_table as an annotated heatmap (experiments x classes, AUC to 2 decimals,
    n/a in grey). Returns False, writing nothing, when the table has no classes."""
    if table.shape[1] == 0 or table.shape[0] == 0:
        return False
    values = table.to_numpy(dtype=np.float64)
    n_rows, n_columns = values.shape
    fig = Figure(
        figsize=(max(4.5, 3.0 + 0.8 * n_columns), max(2.6, 1.4 + 0.3 * n_rows)),
        layout="constrained",
    )
    ax = fig.add_subplot()
    cmap = colormaps["RdYlGn"].with_extremes(bad="lightgrey")
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
    for i in range(n_rows):
        for j in range(n_columns):
            value = values[i, j]
            dark = not math.isnan(value) and abs(value - 0.5) > 0.35
            ax.text(
                j,
                i,
                "n/a" if math.isnan(value) else f"{value:.2f}",
                ha="center",
                va="center",
                fontsize="small",
                color="white" if dark else "black",
            )
    ax.set_xticks(range(n_columns), [str(c) for c in table.columns], rotation=30, ha="right")
    ax.set_yticks(range(n_rows), [str(r) for r in table.index])
    ax.set_xlabel("anomaly class (its abnormal videos + all normal videos)", fontsize="small")
    ax.set_title("Frame AUC per anomaly class (mean score over seeds)", fontsize="medium")
    fig.colorbar(image, ax=ax, label="frame AUC", shrink=0.9)
    fig.savefig(path, dpi=100)
    return True


def seed_band(history: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per epoch: mean, min and max of `column` over seeds (NaN rows dropped); empty when
    the column is missing or all-NaN."""
    if column not in history.columns:
        return pd.DataFrame(columns=["epoch", "mean", "min", "max"])
    values = pd.to_numeric(history[column], errors="coerce")
    epochs = history["epoch"] if "epoch" in history.columns else _epochs(history)
    frame = pd.DataFrame({"epoch": epochs.to_numpy(), "value": values.to_numpy()}).dropna()
    band = frame.groupby("epoch", sort=True)["value"].agg(["mean", "min", "max"])
    return band.reset_index()


def _epochs(history: pd.DataFrame) -> pd.Series:
    # Row order within each seed when the log has no epoch column.
    groups = history.groupby("seed") if "seed" in history.columns else history.groupby(lambda _: 0)
    return groups.cumcount() + 1


def _objective_columns(history: pd.DataFrame) -> list[str]:
    """ "loss", or the objective terms logged instead of it."""
    if not seed_band(history, "loss").empty:
        return ["loss"]
    return [
        c for c in history.columns if c not in NOT_OBJECTIVE and not seed_band(history, c).empty
    ]


def _validation_column(history: pd.DataFrame) -> str | None:
    for column in ("val_auc", "val_loss"):
        if not seed_band(history, column).empty:
            return column
    return None


def _alpha_varies(history: pd.DataFrame) -> bool:
    band = seed_band(history, "alpha")
    return not band.empty and float(band["max"].max()) > float(band["min"].min())


def _draw(ax: Axes, band: pd.DataFrame, label: str | None, color: object) -> None:
    x = band["epoch"].to_numpy(dtype=float)
    ax.plot(x, band["mean"].to_numpy(dtype=float), color=color, lw=1.3, label=label)
    ax.fill_between(
        x, band["min"].to_numpy(dtype=float), band["max"].to_numpy(dtype=float),
        color=color, alpha=0.2, lw=0,
    )  # fmt: skip


def plot_training_curves(path: Path, histories: Mapping[str, pd.DataFrame]) -> None:
    """One row per experiment: training objective, validation metric (val_auc, else
    val_loss) and alpha when it varies, per epoch; mean over seeds, min-max band."""
    if not histories:
        raise ValueError("no experiments to plot")
    panels = {
        name: {
            "objective": _objective_columns(h),
            "validation": _validation_column(h),
            "alpha": _alpha_varies(h),
        }
        for name, h in histories.items()
    }
    kinds = [
        kind
        for kind in ("objective", "validation", "alpha")
        if any(p[kind] for p in panels.values())
    ]
    if not kinds:
        fig = Figure(figsize=(6, 2), layout="constrained")
        fig.text(0.5, 0.5, "no training history to plot", ha="center", va="center")
        fig.savefig(path, dpi=100)
        return
    fig = Figure(figsize=(3.6 * len(kinds) + 0.6, 0.6 + 1.9 * len(histories)), layout="constrained")
    axes = fig.subplots(len(histories), len(kinds), squeeze=False, sharex="row")
    for row, (name, history) in enumerate(histories.items()):
        chosen = panels[name]
        for ax, kind in zip(axes[row], kinds, strict=True):
            ax.set_title(f"{name}: {kind}", fontsize="small", loc="left")
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize="small")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs
            if kind == "objective" and chosen["objective"]:
                columns = chosen["objective"]
                for (color, _), column in zip(_palette(len(columns)), columns, strict=True):
                    _draw(ax, seed_band(history, column), column, color)
                ax.set_ylabel(columns[0] if len(columns) == 1 else "objective", fontsize="small")
                if len(columns) > 1:
                    ax.legend(fontsize="x-small")
            elif kind == "validation" and chosen["validation"]:
                column = chosen["validation"]
                _draw(ax, seed_band(history, column), None, "tab:green")
                ax.set_ylabel(column, fontsize="small")
            elif kind == "alpha" and chosen["alpha"]:
                _draw(ax, seed_band(history, "alpha"), None, "tab:purple")
                ax.set_ylabel("alpha", fontsize="small")
            else:
                _empty_panel(ax, history, kind)
                continue
            if row == len(histories) - 1:
                ax.set_xlabel("epoch", fontsize="small")
    fig.suptitle("Training curves (mean over seeds, band: min-max)")
    fig.savefig(path, dpi=100)


def _empty_panel(ax: Axes, history: pd.DataFrame, kind: str) -> None:
    band = seed_band(history, "alpha")
    if kind == "alpha" and not band.empty:
        text = f"alpha constant ({float(band['mean'].iloc[0]):g})"
    else:
        text = f"no {kind} logged"
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_axis_off()  # not set_xticks([]): the row shares its x axis

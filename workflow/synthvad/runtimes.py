"""Per-job runtime and memory from Snakemake's `benchmark:` files, tabled by rule.

Every rule writes `results/<name>/benchmarks/<rule>/<job>.tsv` (or `<rule>.tsv` for a
rule with one job); the first path component is the rule (the synthesis batch rules are
all filed under `synthesize`)."""

from __future__ import annotations

import html
import math
from pathlib import Path

import pandas as pd

JOB_COLUMNS = ["rule", "job", "seconds", "max_rss_mb", "cpu_seconds"]
TABLE_TITLES = {
    "rule": "rule",
    "jobs": "jobs",
    "total_s": "total s",
    "mean_s": "mean s",
    "max_s": "max s",
    "max_rss_mb": "peak RSS MB",
    "cpu_s": "CPU s",
}


def _numbers(text: str) -> list[dict[str, float]]:
    """The rows of a benchmark file, as floats by column (NaN where not a number)."""
    lines = [line.split("\t") for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return []
    header, rows = lines[0], lines[1:]

    def number(cell: str) -> float:
        try:
            return float(cell)
        except ValueError:
            return float("nan")  # "NA", "-" or a time as h:m:s

    return [dict(zip(header, map(number, row), strict=False)) for row in rows]


def _mean(values: list[float]) -> float:
    known = [v for v in values if not math.isnan(v)]
    return sum(known) / len(known) if known else float("nan")


def _max(values: list[float]) -> float:
    known = [v for v in values if not math.isnan(v)]
    return max(known) if known else float("nan")


def read_benchmarks(folder: str | Path | None) -> pd.DataFrame:
    """One row per job (the mean of its repeats): rule, job, seconds, max_rss_mb,
    cpu_seconds. Values Snakemake could not measure are NaN; no folder: no rows.
    (Parsed by hand: thousands of tiny files, where read_csv costs 10 ms each.)"""
    folder = Path(folder) if folder else None
    rows = []
    for path in sorted(folder.rglob("*.tsv")) if folder and folder.is_dir() else []:
        runs = _numbers(path.read_text(errors="replace"))
        if not runs or "s" not in runs[0]:
            continue  # a job killed while Snakemake wrote it; the rest still count
        relative = path.relative_to(folder).with_suffix("")
        nan = float("nan")
        rows.append(
            {
                "rule": relative.parts[0],
                "job": "/".join(relative.parts[1:]) or relative.parts[0],
                "seconds": _mean([run["s"] for run in runs]),
                "max_rss_mb": _max([run.get("max_rss", nan) for run in runs]),
                "cpu_seconds": _mean([run.get("cpu_time", nan) for run in runs]),
            }
        )
    return pd.DataFrame(rows, columns=JOB_COLUMNS)


def runtime_table(jobs: pd.DataFrame) -> pd.DataFrame:
    """By rule, most total time first: jobs, total/mean/max seconds, peak RSS, CPU seconds."""
    if jobs.empty:
        return pd.DataFrame(columns=list(TABLE_TITLES))
    grouped = jobs.groupby("rule", sort=True)
    table = pd.DataFrame(
        {
            "jobs": grouped.size(),
            "total_s": grouped["seconds"].sum(),
            "mean_s": grouped["seconds"].mean(),
            "max_s": grouped["seconds"].max(),
            # min_count=1: a rule whose memory was never measured stays NaN, not 0.
            "max_rss_mb": grouped["max_rss_mb"].max(),
            "cpu_s": grouped["cpu_seconds"].sum(min_count=1),
        }
    ).reset_index()
    return table.sort_values(["total_s", "rule"], ascending=[False, True], ignore_index=True)


def _cell(value: object) -> str:
    if isinstance(value, str):
        return html.escape(value)
    if pd.isna(value):
        return "–"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"  # never 1.29e+03


def runtimes_html(table: pd.DataFrame, table_id: str = "synthvad-runtimes") -> str:
    """The table as HTML (a fragment), with the totals in its caption."""
    if table.empty:
        return f'<p id="{table_id}">No benchmark files yet: no job has run with them.</p>'
    head = "".join(f"<th>{html.escape(t)}</th>" for t in TABLE_TITLES.values())
    body = "\n".join(
        "<tr>" + "".join(f"<td>{_cell(row[key])}</td>" for key in TABLE_TITLES) + "</tr>"
        for row in table.to_dict("records")
    )
    caption = (
        f"{int(table['jobs'].sum())} jobs, {table['total_s'].sum():.0f} s in all "
        "(summed over jobs; parallel jobs overlap in wall time)"
    )
    return (
        f'<table id="{table_id}" class="synthvad-table"><caption>{html.escape(caption)}'
        f"</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def runtimes_page(table: pd.DataFrame) -> str:
    """A self-contained page of the runtime table, for the report's Workflow category."""
    style = (
        "body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
        "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}th{background:#f0f0f0}"
        "caption{text-align:left;margin-bottom:0.4em}"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Runtimes by rule</title>"
        f"<style>{style}</style></head><body><h1>Runtimes by rule</h1>{runtimes_html(table)}"
        "<p>From each job's Snakemake <code>benchmark:</code> file: wall seconds, peak "
        "resident memory and CPU seconds. Jobs of earlier runs that were not redone keep "
        "their figures.</p></body></html>\n"
    )

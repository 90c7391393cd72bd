"""Runtimes by rule from Snakemake benchmark files, against sums computed by hand."""

import math

import pandas as pd

from synthvad.runtimes import read_benchmarks, runtime_table, runtimes_html

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def _write(path, *rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "".join(rows))


def row(seconds, rss, cpu):
    return f"{seconds}\t0:00:00\t{rss}\t0\t0\t0\t0\t0\t0\t{cpu}\n"


def test_jobs_and_rules_by_hand(tmp_path):
    _write(tmp_path / "describe.tsv", row(2.0, 100.5, 1.5))
    _write(tmp_path / "detect" / "a.tsv", row(10.0, 300, 9))
    _write(tmp_path / "detect" / "b.tsv", row(30.0, 200, 20), row(50.0, 250, 40))  # repeats
    _write(tmp_path / "synthesize" / "cog" / "synthesize_batch_1.tsv", row(4.0, "NA", "-"))
    (tmp_path / "broken.tsv").write_text("")  # a job killed mid-write: left out

    jobs = read_benchmarks(tmp_path)
    assert sorted(jobs["rule"]) == ["describe", "detect", "detect", "synthesize"]
    b = jobs[jobs["job"] == "b"].iloc[0]
    assert (b["seconds"], b["max_rss_mb"], b["cpu_seconds"]) == (40.0, 250.0, 30.0)
    assert jobs[jobs["rule"] == "synthesize"]["job"].item() == "cog/synthesize_batch_1"

    table = runtime_table(jobs).set_index("rule")
    assert list(table.index) == ["detect", "synthesize", "describe"]  # most time first
    detect = table.loc["detect"]
    assert (detect["jobs"], detect["total_s"], detect["mean_s"], detect["max_s"]) == (2, 50, 25, 40)
    assert (detect["max_rss_mb"], detect["cpu_s"]) == (300, 39)
    assert math.isnan(table.loc["synthesize", "max_rss_mb"])  # never measured: not 0
    assert math.isnan(table.loc["synthesize", "cpu_s"])

    page = runtimes_html(runtime_table(jobs))
    assert "4 jobs, 56 s in all" in page and "<td>detect</td>" in page and "–" in page
    assert "<td>300</td>" in page and "e+" not in page  # peak RSS of detect, plainly


def test_no_folder_no_rows(tmp_path):
    assert read_benchmarks(tmp_path / "missing").empty and read_benchmarks(None).empty
    table = runtime_table(read_benchmarks(None))
    assert isinstance(table, pd.DataFrame) and table.empty
    assert "No benchmark files" in runtimes_html(table)

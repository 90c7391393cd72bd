"""The real Snakemake on the trimmed demo: outputs, no-op rerun, selective reruns."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml

from .conftest import ROOT

pytestmark = pytest.mark.workflow


def snakemake(workdir: Path, *args: str) -> str:
    cmd = [
        sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
        "--directory", str(workdir), "--configfile", str(workdir / "config.yaml"),
        "--cores", "2", *args,
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        logs = "\n".join(p.read_text()[-3000:] for p in (workdir / "logs").rglob("*.log"))
        raise AssertionError(
            f"snakemake failed:\n{proc.stdout[-5000:]}\n{proc.stderr[-5000:]}\n{logs}"
        )
    return proc.stdout + proc.stderr


def planned_jobs(workdir: Path) -> Counter:
    """Rule name -> number of jobs a dry run would execute."""
    out = snakemake(workdir, "--dry-run")
    return Counter(re.findall(r"^(?:local)?rule (\w+):", out, flags=re.M))


def set_key(workdir: Path, section: str, key: str, value) -> None:
    """Set config[section][key]; `section` may be dotted (detectors.topk_bce)."""
    path = workdir / "config.yaml"
    cfg = yaml.safe_load(path.read_text())
    node = cfg
    for part in section.split("."):
        node = node.setdefault(part, {})
    node[key] = value
    path.write_text(yaml.safe_dump(cfg))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("wf")
    (workdir / "config.yaml").write_text((ROOT / ".test" / "config.yaml").read_text())
    snakemake(workdir)
    return workdir


def test_every_stage_writes_its_outputs(finished_run):
    r = finished_run / "results" / "citest"
    index = pd.read_parquet(r / "index.parquet")
    assert set(index.split) == {"train", "test"} and len(index) == 12
    prompts = pd.read_parquet(r / "prompts.parquet")
    assert set(prompts.method) == {"gvvad", "pavad"}
    clips = sorted((r / "synthetic" / "perturb").glob("*.mp4"))
    assert len(clips) == len(prompts)
    sidecar = json.loads(clips[0].with_suffix(".json").read_text())
    assert sidecar["prompt"] and sidecar["seed"] >= 0
    filtered = pd.read_parquet(r / "filtered.parquet")
    assert {"keep", "reason", "motion", "frame_std", "clip_score"} <= set(filtered.columns)
    chunks = pd.concat([pd.read_parquet(p) for p in (r / "filter").glob("*.parquet")])
    assert len(chunks) == len(filtered) and chunks["strip"].str[:2].eq(b"\xff\xd8").all()
    experiments = yaml.safe_load((ROOT / ".test" / "config.yaml").read_text())["experiments"]
    for name in experiments:  # every detector model, one seed each
        metrics = json.loads((r / "runs" / name / "metrics.json").read_text())
        assert 0.0 <= metrics["auc"] <= 1.0 and 0.0 <= metrics["ap"] <= 1.0
        assert metrics["seeds"] == [1] and len(metrics["per_seed"]) == 1  # .test seed: 1
        assert (r / "runs" / name / "model.safetensors").stat().st_size > 0
    assert json.loads((r / "runs" / "unsupervised" / "metrics.json").read_text())["unsupervised"]
    summary = (r / "report" / "summary.md").read_text()
    assert "RANDOM" in summary and "pavad_darm" in summary
    assert len(list((r / "report" / "plots").glob("*.png"))) >= 5
    # The synthetic-data tables: generation rows per method (.test: per_class off), norms.
    generation = json.loads((r / "metrics" / "generation.json").read_text())
    assert {(row["method"], row["class"]) for row in generation["rows"]} >= {("gvvad", "all"), ("pavad", "all")}  # fmt: skip
    assert "PA-VAD Table 3" in summary and "PA-VAD Table 1" in summary
    assert (r / "report" / "domain_gap.png").stat().st_size > 1000
    # Every job wrote its benchmark file; the runtime table has a row per rule that ran.
    runtimes = (r / "report" / "runtimes.html").read_text()
    for rule in ("describe", "synthesize", "filter_chunk", "detect", "gallery"):
        assert f"<td>{rule}</td>" in runtimes, rule
    assert len(list((r / "benchmarks" / "detect").glob("*.tsv"))) == len(experiments)
    assert not list(r.rglob("*.part")), "a temporary file was left behind"


def test_second_run_does_nothing(finished_run):
    assert planned_jobs(finished_run) == Counter()


def test_report_renders_in_a_browser(finished_run, tmp_path):
    """`snakemake --report`, opened in headless Chromium: the landing table, each category
    and a gallery card are in the page as the browser renders it, not only in its source."""
    import os
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("SYNTHVAD_REQUIRE_CHROMIUM"):
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed")
    report = tmp_path / "report.html"
    snakemake(finished_run, "--report", str(report))
    html = report.read_text()
    dom = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=20000",
         "--dump-dom", report.as_uri()],
        capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    assert 'id="synthvad-comparison"' in dom and "pavad_darm" in dom  # the landing table
    assert 'class="clip-card' in dom  # a gallery card on the landing page
    for category in ("Detection", "Scores per test video", "Synthetic data", "Workflow"):
        assert category in dom, category
    assert 'id="synthvad-landing-runtimes"' in dom  # runtimes by rule, from benchmark: files
    # The rendered page is not the source: the app built it from the embedded data.
    assert 'id="synthvad-comparison"' not in html.split("<body>", 1)[-1].split("<script", 1)[0]
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=20000",
         f"--screenshot={tmp_path / 'report.png'}", "--window-size=1400,1000", report.as_uri()],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_caption_stream_runs_its_rules_once_and_feeds_lap(finished_run, tmp_path, monkeypatch):
    """Before the tests below change finished_run's config and outputs."""
    import shutil

    from safetensors import safe_open

    from .openai_server import KEY, KEY_VAR, ScriptedOpenAI

    workdir = tmp_path / "wf"
    shutil.copytree(finished_run, workdir, symlinks=True)
    monkeypatch.setenv(KEY_VAR, KEY)
    run = workdir / "results" / "citest"
    with ScriptedOpenAI(KEY) as server:
        endpoint = {"base_url": server.base_url, "model": server.model, "api_key_env": KEY_VAR}
        set_key(workdir, "captions", "openai", {**endpoint, "cache_dir": "results/llm-cache"})
        set_key(workdir, "detectors.lap", "captions", True)
        planned = planned_jobs(workdir)
        # Captions of both parts, their embeddings, the one experiment on lap, the report.
        assert planned == Counter(captions=2, caption_features=2, detect=1, report=1, all=1)
        snakemake(workdir, "results/citest/runs/gvvad_lap/metrics.json")
        segments = sum(
            len(pd.read_parquet(run / "captions" / f"captions-{part}.parquet"))
            for part in ("real", "synthetic")
        )
        assert len(server.chat) == segments  # one request per segment (segments_per_caption 1)
        with safe_open(run / "runs" / "gvvad_lap" / "model.safetensors", "pt") as fh:
            header = json.loads(fh.metadata()["synthvad"])
        assert header["detector"]["caption_dim"] == 512  # ViT-B-32's text width
        before = pd.read_parquet(run / "captions" / "captions-real.parquet")
        # Forced again, every answer comes from the cache.
        snakemake(
            workdir, "results/citest/captions/captions-real.parquet", "--forcerun", "captions"
        )
        assert len(server.chat) == segments
        pd.testing.assert_frame_equal(before, pd.read_parquet(run / "captions" / "captions-real.parquet"))  # fmt: skip
        # Connection keys are not rule params.
        set_key(workdir, "captions", "openai", {**endpoint, "cache_dir": "results/llm-cache", "timeout_s": 9})  # fmt: skip
        assert "Nothing to be done" in snakemake(workdir, "--dry-run", "results/citest/runs/gvvad_lap/metrics.json")  # fmt: skip


def test_filter_threshold_reruns_filter_and_downstream_only(finished_run):
    set_key(finished_run, "filter", "min_motion", 0.25)
    assert planned_jobs(finished_run) == Counter(
        {
            "filter": 1,
            "features_synthetic": 1,
            "feature_store": 1,
            "detect": 4,
            "domain_gap": 1,  # the kept clips changed
            "generation_quality": 1,
            "gallery": 1,
            "report": 1,
            "all": 1,
        }
    )


def test_detector_setting_reruns_only_the_experiments_using_it(finished_run):
    set_key(finished_run, "filter", "min_motion", 0.3)  # back to what was run
    set_key(finished_run, "detectors.topk_bce", "lr", 0.002)  # experiments real and gvvad
    assert planned_jobs(finished_run) == Counter({"detect": 2, "report": 1, "all": 1})
    set_key(finished_run, "detect", "val_fraction", 0.3)  # the protocol: every experiment
    assert planned_jobs(finished_run) == Counter({"detect": 7, "report": 1, "all": 1})


def test_adding_clips_makes_only_the_new_clips(finished_run):
    """More clips reruns the whole-set stages (describe, retrieve, refine, gathers) but
    regenerates no existing clip: refine is a checkpoint and unchanged prompt files pass
    Snakemake's input checksum."""
    set_key(finished_run, "detectors.topk_bce", "lr", 0.001)  # back to what was run
    set_key(finished_run, "detect", "val_fraction", 0.2)
    synthetic = finished_run / "results" / "citest" / "synthetic" / "perturb"
    before = {p.name: p.stat().st_mtime_ns for p in synthetic.glob("*.mp4")}
    set_key(finished_run, "describe", "per_class", 2)
    set_key(finished_run, "retrieve", "top_k", 2)
    out = snakemake(finished_run, "results/citest/filtered.parquet")
    made = re.findall(r"rule synthesize:\n(?:[ \t]+.*\n)*?[ \t]+wildcards:.*clip_id=([\w-]+)", out)
    new = sorted(
        [
            f"gvvad-{c}-001-{k}"
            for c in ("explosion", "running", "falling")
            for k in ("abnormal", "normal")
        ]
        + [f"pavad-{c}-001" for c in ("explosion", "running", "falling")]
    )
    assert sorted(made) == new
    after = {p.name: p.stat().st_mtime_ns for p in synthetic.glob("*.mp4")}
    assert {name: after[name] for name in before} == before  # not one old clip rewritten
    assert len(pd.read_parquet(finished_run / "results/citest/filtered.parquet")) == 20


def test_motion_extractor_runs_through_the_feature_stage(finished_run, tmp_path):
    import shutil

    import pyarrow.parquet as pq

    workdir = tmp_path / "wf"
    shutil.copytree(finished_run, workdir, symlinks=True)
    set_key(workdir, "features", "extractor", "motion")
    planned = planned_jobs(workdir)
    # A new extractor: new features, detectors and report; clips and filter stay.
    assert planned["features_real_chunk"] == 2 and planned["features_synthetic_chunk"] >= 1
    assert planned["detect"] == len(
        yaml.safe_load((ROOT / ".test" / "config.yaml").read_text())["experiments"]
    )
    assert not {"synthesize", "filter_chunk", "retrieve", "demo_dataset"} & set(planned)
    shards = workdir / "results" / "citest" / "features" / "motion-grid4"
    parts = [shards / "part-real.parquet", shards / "part-synthetic.parquet"]
    targets = [str(p.relative_to(workdir)) for p in parts]  # detectors are tested above
    snakemake(workdir, *targets)
    for part in parts:
        assert pq.read_schema(part).field("feature").type.list_size == 193
    # CLIP's sampling keys do not touch motion features.
    set_key(workdir, "features", "frames_per_segment", 3)
    assert "Nothing to be done" in snakemake(workdir, "--dry-run", *targets)

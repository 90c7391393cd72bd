"""Glue between Snakemake rules and the stage modules: one function per rule.

Each function reads only what its rule declares (input, output, params), so Snakemake's
rerun triggers see every dependency. Logging goes to the rule's log file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("synthvad")


def demo(smk: Any) -> None:
    from synthvad.data.demo import generate_demo

    generate_demo(smk.params.demo, Path(smk.output.manifest).parent, smk.params.seed)


def index(smk: Any) -> None:
    from synthvad import index as stage

    stage.run(
        smk.input.manifest,
        smk.params.on_corrupt,
        smk.output.index,
        smk.output.ground_truth,
        smk.output.rejected,
    )


def describe(smk: Any) -> None:
    from synthvad.describe import template

    template.run(smk.params.config, smk.output[0])


def retrieve(smk: Any) -> None:
    from synthvad import retrieve as stage

    stage.run(smk.params.config, smk.input.index, smk.output.table, smk.output.images)


def refine(smk: Any) -> None:
    from synthvad.refine import template

    template.run(
        template_phrases=smk.params.template_phrases,
        methods=smk.params.methods,
        planned=smk.params.clip_ids,
        descriptions=smk.input.get("descriptions"),
        init_images=smk.input.get("init_images"),
        out=smk.output[0],
    )


def synthesize(smk: Any) -> None:
    from synthvad.synthesize import run as stage

    stage.run(
        smk.params.config,
        smk.input.prompts,
        smk.wildcards.clip_id,
        smk.output.video,
        smk.output.sidecar,
    )


def filter_clips(smk: Any) -> None:
    from synthvad import filter as stage

    stage.run(smk.params.config, list(smk.input.videos), smk.output[0])


def features_real(smk: Any) -> None:
    from synthvad import features as stage

    stage.extract(stage.real_videos(smk.input.index), smk.params.config, smk.output[0])


def features_synthetic(smk: Any) -> None:
    from synthvad import features as stage

    stage.extract(stage.synthetic_videos(smk.input.filtered), smk.params.config, smk.output[0])


def detect(smk: Any) -> None:
    from synthvad.detect.train import run_experiment

    run_experiment(
        shard_paths=list(smk.input.shards),
        ground_truth_path=smk.input.ground_truth,
        index_path=smk.input.index,
        experiment=smk.params.experiment,
        detect_cfg=smk.params.detect,
        segment_cfg=smk.params.segments,
        seed=smk.params.seed,
        out=dict(smk.output.items()),
    )


def report(smk: Any) -> None:
    import pandas as pd

    from synthvad.report import make_report

    rejected = pd.read_parquet(smk.input.rejected)
    skipped = [f"video {r.video_id} was skipped: {r.reason}" for r in rejected.itertuples()]

    runs = {
        name: {"metrics": m, "scores": s}
        for name, m, s in zip(
            smk.params.experiments, smk.input.metrics, smk.input.scores, strict=True
        )
    }
    make_report(
        runs=runs,
        index_path=smk.input.index,
        ground_truth_path=smk.input.ground_truth,
        out_table_csv=smk.output.table_csv,
        out_table_md=smk.output.table_md,
        plot_dir=smk.output.plots,
        warnings=[*smk.params.warnings, *skipped],
    )


STAGES: dict[str, Callable[[Any], None]] = {
    "demo_dataset": demo,
    "index": index,
    "describe": describe,
    "retrieve": retrieve,
    "refine": refine,
    "synthesize": synthesize,
    "filter": filter_clips,
    "features_real": features_real,
    "features_synthetic": features_synthetic,
    "detect": detect,
    "report": report,
}


@contextlib.contextmanager
def _logging_to(path: str | None) -> Iterator[None]:
    """Send logging and stderr (progress bars) to the rule's log file."""
    if not path:
        yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", buffering=1) as fh:
        handler = logging.StreamHandler(fh)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        old_stderr, sys.stderr = sys.stderr, fh
        try:
            yield
        finally:
            sys.stderr = old_stderr
            root.removeHandler(handler)


def run(smk: Any) -> None:
    """Entry point of workflow/scripts/stage.py: run the stage named after the rule."""
    rule = smk.rule
    if rule not in STAGES:
        raise KeyError(f"no synthvad stage for rule {rule!r}")
    # Before torch is imported (if the stage needs it at all): its thread pool size.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(max(1, int(smk.threads)))
    with _logging_to(smk.log[0] if smk.log else None):
        started = time.perf_counter()
        try:
            STAGES[rule](smk)
        except Exception:
            log.exception("rule %s failed", rule)
            raise
        log.info("rule %s done in %.1f s", rule, time.perf_counter() - started)

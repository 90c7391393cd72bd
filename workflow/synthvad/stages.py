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
    from synthvad.datasets.demo import generate_demo

    generate_demo(
        smk.params.demo, Path(smk.output.manifest).parent, smk.params.seed, int(smk.threads)
    )


def index(smk: Any) -> None:
    from synthvad import index as stage

    stage.run(
        smk.params.data,
        smk.input.get("manifest"),
        smk.output.index,
        smk.output.ground_truth,
        smk.output.rejected,
    )


def import_features(smk: Any) -> None:
    from synthvad.datasets.import_features import import_features as stage

    stage(
        smk.params.data,
        smk.params.segments,
        smk.output.index,
        smk.output.ground_truth,
        smk.output.rejected,
        smk.output.shard,
    )


def describe(smk: Any) -> None:
    config = smk.params.config
    if config["describe"]["backend"] == "openai":
        from synthvad.describe import openai_backend
        from synthvad.llm.settings import settings_for

        # Connection keys (server, key variable, parallelism) come from the config, not
        # params: they do not change answers, so changing them must not rerun anything.
        settings = settings_for("describe", config["describe"], smk.config)
        openai_backend.run(config, settings, smk.output[0])
        return
    from synthvad.describe import template

    template.run(config, smk.output[0])


def retrieve(smk: Any) -> None:
    from synthvad import retrieve as stage

    stage.run(smk.params.config, smk.input.index, smk.output.table, smk.output.images)


def refine(smk: Any) -> None:
    from synthvad.refine import template

    cfg = smk.params.config
    if cfg["backend"] == "openai":
        from synthvad.llm.settings import settings_for
        from synthvad.refine import openai_backend

        settings = settings_for("refine", cfg, smk.config)  # connection keys: see describe()

        def pavad_rows(images: Any) -> list[dict[str, Any]]:
            return openai_backend.refined_pavad_prompts(images, cfg, settings)
    else:

        def pavad_rows(images: Any) -> list[dict[str, Any]]:
            return template.pavad_prompts(images, cfg["template_phrases"])

    template.run(
        cfg["backend"],
        pavad_rows,
        methods=smk.params.methods,
        planned=smk.params.clip_ids,
        descriptions=smk.input.get("descriptions"),
        init_images=smk.input.get("init_images"),
        table=smk.output.table,
        clip_dir=smk.output.clips,
    )


def synthesize(smk: Any) -> None:
    from synthvad.synthesize import jobs
    from synthvad.synthesize import run as stage

    params = smk.params.config

    def paths(value: str | list[str]) -> list[str]:  # one clip (wildcard rule) or a batch
        return [value] if isinstance(value, str) else list(value)

    stage.run(
        params,
        # Device, offload, kernels: from the config, not params, because they do not change
        # what a clip is; switching on offload after an OOM must not rerun finished clips.
        jobs.runtime(smk.config, params["backend"]),
        paths(smk.input.prompts),
        paths(smk.output.videos),
        paths(smk.output.sidecars),
    )


def filter_chunk(smk: Any) -> None:
    from synthvad import filter as stage

    params = smk.params.config  # clip.device from the config: where it runs never rescores
    config = {**params, "clip": {**params["clip"], "device": smk.config["clip"]["device"]}}
    stage.score_chunk(config, list(smk.input.videos), smk.output[0])


def filter_clips(smk: Any) -> None:
    from synthvad import filter as stage

    stage.gather(smk.params.thresholds, list(smk.input.chunks), smk.output[0])


def features_real_chunk(smk: Any) -> None:
    from synthvad.features import chunks, jobs

    # Device, batch size, workers: from the config, not params (they never rerun a chunk).
    chunks.real_chunk(
        smk.input.index,
        int(smk.wildcards.chunk),
        smk.params.n_chunks,
        smk.params.config,
        jobs.runtime(smk.config),
        smk.output[0],
    )


def features_synthetic_chunk(smk: Any) -> None:
    from synthvad.features import chunks, jobs

    chunks.synthetic_chunk(
        list(smk.input.videos), smk.params.config, jobs.runtime(smk.config), smk.output[0]
    )


def features_real(smk: Any) -> None:
    from synthvad.features import chunks

    chunks.gather_real(list(smk.input.chunks), smk.input.index, smk.params.segments, smk.output[0])


def features_synthetic(smk: Any) -> None:
    from synthvad.features import chunks

    chunks.gather_synthetic(
        list(smk.input.chunks), smk.input.filtered, smk.params.segments, smk.output[0]
    )


def feature_store(smk: Any) -> None:
    from synthvad.detect.store import build_store

    build_store([smk.input[0]], smk.output[0], smk.params.dtype)


def class_text_bank(smk: Any) -> None:
    from synthvad import text_bank

    text_bank.run(smk.params.config, smk.output[0])


def captions(smk: Any) -> None:
    from synthvad import captions as stage
    from synthvad.llm.settings import settings_for

    cfg = smk.params.config
    settings = settings_for("captions", cfg, smk.config)  # connection keys: see describe()
    paths = stage.video_paths(smk.input.get("index"), list(smk.input.get("videos", [])))
    stage.caption_part(smk.input.features, paths, cfg, settings, smk.output[0])


def caption_features(smk: Any) -> None:
    from synthvad import captions as stage

    cfg = smk.params.config
    stage.embed_part(
        smk.input.captions, smk.input.features, cfg["clip"], cfg["seed"], smk.output[0]
    )


def detect(smk: Any) -> None:
    from synthvad.detect.train import run_experiment

    run_experiment(
        feature_paths=list(smk.input.stores),
        ground_truth_path=smk.input.ground_truth,
        index_path=smk.input.index,
        experiment=smk.params.experiment,
        detector_cfg=smk.params.detector,
        protocol=smk.params.protocol,
        segment_cfg=smk.params.segments,
        seed=smk.params.seed,
        out=dict(smk.output.items()),
        threads=int(smk.threads),
        text_bank_path=next(iter(smk.input.bank), None),
        caption_paths=list(smk.input.captions),
    )


def domain_gap(smk: Any) -> None:
    from synthvad import domain_gap as stage

    stage.run(list(smk.input.stores), smk.params.seed, smk.output.json, smk.output.plot)


def generation_quality(smk: Any) -> None:
    import torch

    from synthvad import generation

    torch.set_num_threads(max(1, int(smk.threads)))
    cfg = {**smk.params.config, **{k: smk.config["quality"][k] for k in ("device", "batch_size")}}
    generation.run(
        smk.input.index, smk.input.filtered, cfg, smk.params.seed, cfg["device"], smk.output[0]
    )


def gallery(smk: Any) -> None:
    from pathlib import Path

    import pandas as pd

    from synthvad import gallery as stage

    filtered = pd.read_parquet(smk.input.filtered)
    prompts = pd.read_parquet(smk.input.prompts)
    init_table = smk.input.get("init_table")
    init = pd.read_parquet(init_table) if init_table else None
    init_dir = Path(smk.input.init_dir) if init_table else None
    thresholds = smk.params.thresholds["filter"]
    strips = stage.read_strips(list(smk.input.filter_chunks))
    stage.filter_histograms(Path(smk.output.histograms), filtered, thresholds)
    n = stage.write_gallery(
        Path(smk.output.html), filtered, prompts, init, init_dir, thresholds,
        smk.params.report["gallery_cards"], strips,
    )  # fmt: skip
    stage.write_preview(
        Path(smk.output.preview), filtered, prompts, init, init_dir, thresholds,
        smk.params.report["preview_cards"], strips,
    )  # fmt: skip
    log.info("gallery: %d clip cards", n)


def report(smk: Any) -> None:
    import pandas as pd

    from synthvad.report import make_report

    rejected = pd.read_parquet(smk.input.rejected)
    skipped = [f"video {r.video_id} was skipped: {r.reason}" for r in rejected.itertuples()]

    runs = {
        name: {"metrics": m, "scores": s, "history": h}
        for name, m, s, h in zip(
            smk.params.experiments,
            smk.input.metrics,
            smk.input.scores,
            smk.input.histories,
            strict=True,
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
        generation_path=smk.input.get("generation"),
        domain_gap_path=smk.input.get("domain_gap"),
        gallery_preview_path=smk.input.get("gallery_preview"),
        detection_dir=smk.output.detection,
        landing_html=smk.output.landing,
        summary_html=smk.output.table_html,
        benchmarks_dir=smk.params.benchmarks,
        runtimes_html=smk.output.runtimes,
        workers=smk.threads,
    )


STAGES: dict[str, Callable[[Any], None]] = {
    "demo_dataset": demo,
    "index": index,
    "import_features": import_features,
    "describe": describe,
    "retrieve": retrieve,
    "refine": refine,
    "synthesize": synthesize,
    "filter_chunk": filter_chunk,
    "filter": filter_clips,
    "features_real_chunk": features_real_chunk,
    "features_real": features_real,
    "features_synthetic_chunk": features_synthetic_chunk,
    "features_synthetic": features_synthetic,
    "feature_store": feature_store,
    "class_text_bank": class_text_bank,
    "captions": captions,
    "caption_features": caption_features,
    "detect": detect,
    "domain_gap": domain_gap,
    "generation_quality": generation_quality,
    "gallery": gallery,
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
    # A rule runs the stage of its name, unless it says otherwise: the synthesis batch
    # rules, defined in a loop, carry `params: stage="synthesize"`.
    rule = smk.params.get("stage", smk.rule)
    if rule not in STAGES:
        raise KeyError(f"no synthvad stage for rule {smk.rule!r} (stage {rule!r})")
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

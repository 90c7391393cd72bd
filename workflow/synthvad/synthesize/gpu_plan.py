"""What a run's synthesis will cost before it is submitted: clips to make, GPU-hours and
wall time on N GPUs.

The clips to make are the synthesis outputs that `snakemake --summary` (the dry-run's
DAG) marks "update pending". Seconds per clip come from the sidecars of clips already
made with the same generator settings (their `settings_digest`); where there are none, from
each generator's published reference figure (its registry entry, e.g. wan.py), scaled to
the configured steps and video size.

    python -m synthvad.synthesize.gpu_plan --gpus 8                     # in the project folder
    python -m synthvad.synthesize.gpu_plan --gpus 8 -- --configfile my.yaml [targets]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from synthvad.synthesize import jobs, registry


@dataclass(frozen=True)
class GeneratorPlan:
    generator: str
    clips: int
    jobs: int
    seconds_per_clip: float
    load_seconds: float
    source: str  # where seconds_per_clip comes from

    @property
    def gpu_hours(self) -> float:
        return (self.clips * self.seconds_per_clip + self.jobs * self.load_seconds) / 3600


def pending_clips(summary: str) -> pd.DataFrame:
    """(generator, clip_id) of every clip `snakemake --summary` plans to (re)make."""
    rows = []
    for line in summary.splitlines():
        cells = line.split("\t")
        if len(cells) < 6 or not cells[2].startswith("synthesize"):
            continue
        path = Path(cells[0])
        if path.suffix == ".mp4" and cells[5].strip() == "update pending":
            rows.append({"generator": path.parent.name, "clip_id": path.stem})
    return pd.DataFrame(rows, columns=["generator", "clip_id"])


def measured(folder: Path, digest: str) -> tuple[list[float], list[float], int]:
    """Seconds per clip and load seconds of the sidecars in `folder` made with these
    settings, and how many sidecars were made with others."""
    seconds, loads, other = [], [], 0
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if record.get("settings_digest") != digest or not record.get("seconds"):
            other += 1
            continue
        seconds.append(float(record["seconds"]))
        loads.append(float(record.get("load_seconds") or 0.0))
    return seconds, loads, other


def reference_seconds(generator: str, steps: int, frames: int, width: int, height: int) -> float:
    """The reference figure scaled linearly in steps and in frames x pixels (a rough rule:
    attention grows faster than linearly with video size)."""
    ref = registry.diffusers_spec(generator).reference
    at = ref.settings
    size = (frames * width * height) / (at.frames * at.width * at.height)
    return ref.seconds * (steps / at.steps) * size


def plan_generator(
    config: dict[str, Any], generator: str, clips: int, results: Path
) -> GeneratorPlan:
    """Seconds per clip (measured, else the reference) and the GPU-hours of `clips` clips."""
    section = config["synthesize"][generator]
    n_jobs = math.ceil(clips / config["synthesize"]["clips_per_job"])
    digest = jobs.settings_digest(jobs.rule_params(config, generator))
    seconds, loads, other = measured(results / "synthetic" / generator, digest)
    if seconds:
        source = f"measured: median of {len(seconds)} clips with these settings"
        return GeneratorPlan(
            generator, clips, n_jobs, statistics.median(seconds), statistics.median(loads), source
        )
    spec = registry.diffusers_spec(generator)
    video = spec.video(section)
    steps, frames, width, height = video.steps, video.frames, video.width, video.height
    ref, at = spec.reference, spec.reference.settings
    note = f"; {other} clips made with other settings ignored" if other else ""
    source = (
        f"nothing measured with these settings{note}: reference {ref.seconds:g} s "
        f"({ref.source}, {at.steps} steps, {at.frames}x{at.width}x{at.height}) scaled to "
        f"{steps} steps, {frames}x{width}x{height}"
    )
    per_clip = reference_seconds(generator, steps, frames, width, height)
    return GeneratorPlan(generator, clips, n_jobs, per_clip, 60.0 * section["load_minutes"], source)


def make_plan(
    config: dict[str, Any], summary: str, root: Path = Path(".")
) -> tuple[list[GeneratorPlan], int]:
    """Plans of the GPU generators with clips to make, and the number of CPU clips;
    `root`: the working directory of the run (where results/ lies)."""
    pending = pending_clips(summary)
    results = root / "results" / config["name"]
    plans, cpu_clips = [], 0
    for generator, group in pending.groupby("generator", sort=True):
        if not registry.get(str(generator)).is_diffusers:
            cpu_clips += len(group)
            continue
        plans.append(plan_generator(config, str(generator), len(group), results))
    return plans, cpu_clips


def wall_hours(plans: list[GeneratorPlan], gpus: int) -> float:
    """GPU-hours spread over `gpus` GPUs, never less than the longest single job."""
    total = sum(p.gpu_hours for p in plans)
    longest = max(
        (
            (p.load_seconds + p.seconds_per_clip * math.ceil(p.clips / p.jobs)) / 3600
            for p in plans
            if p.jobs
        ),
        default=0.0,
    )
    return max(total / gpus, longest)


def render(plans: list[GeneratorPlan], cpu_clips: int, gpus: int) -> str:
    lines = []
    if not plans:
        lines.append("No diffusion clips to make: the synthesis outputs are up to date.")
    for p in plans:
        lines.append(
            f"{p.generator}: {p.clips} clips in {p.jobs} jobs, {p.seconds_per_clip:.3g} s per "
            f"clip + {p.load_seconds:.0f} s model load per job = {p.gpu_hours:.1f} GPU-hours\n"
            f"    seconds per clip: {p.source}"
        )
    if plans:
        total = sum(p.gpu_hours for p in plans)
        lines.append(
            f"total: {sum(p.clips for p in plans)} clips, {total:.1f} GPU-hours; wall time on "
            f"{gpus} GPU{'s' if gpus > 1 else ''}: {wall_hours(plans, gpus):.1f} h"
        )
        notes = (registry.diffusers_spec(p.generator).plan_note for p in plans)
        lines.extend(f"    ({note})" for note in dict.fromkeys(notes) if note)
    if cpu_clips:
        lines.append(f"{cpu_clips} clips from the CPU renderer (perturb): no GPU time")
    return "\n".join(lines) + "\n"


def snakemake_summary(extra: list[str]) -> str:
    """`snakemake --summary` with the user's extra arguments (targets included; none: the
    default target)."""
    cmd = [sys.executable, "-m", "snakemake", "--summary", *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"snakemake --summary failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


def _option(args: list[str], name: str) -> str | None:
    values = [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == name]
    return values[-1] if values else None


def load_run_config(extra: list[str]) -> dict[str, Any]:
    """The validated config that Snakemake will use: --configfile from `extra` (it replaces
    config.yaml, as in the Snakefile), else config.yaml. --config overrides are not read."""
    from synthvad.config import load_config

    return load_config(_option(extra, "--configfile") or "config.yaml")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gpus", type=int, default=1, help="GPUs the jobs will share")
    parser.add_argument("snakemake_args", nargs="*", help="after --: passed to snakemake")
    args = parser.parse_args(argv)
    if args.gpus < 1:
        parser.error("--gpus must be at least 1")
    config = load_run_config(args.snakemake_args)
    root = Path(_option(args.snakemake_args, "--directory") or ".")
    plans, cpu_clips = make_plan(config, snakemake_summary(args.snakemake_args), root)
    sys.stdout.write(render(plans, cpu_clips, args.gpus))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

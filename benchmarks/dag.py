"""Seconds for `snakemake -n` as the number of synthetic clips grows.

The default config with describe.per_class, retrieve.top_k and retrieve.normal_top_k
scaled so that the plan holds N synthetic clips (half GV-VAD, half PA-VAD), in a fresh
working directory, so every job is listed. Baseline in the same run: the demo config as
shipped (40 clips), i.e. the fixed cost of starting Snakemake and parsing the workflow.
Prints seconds, jobs, the ratio to the baseline and milliseconds per job above it, with
one job per clip and with synthesize.clips_per_job batches (--clips-per-job).

--rerun N also measures what adding clips costs: it runs stages 1-4 for real on an N-clip
plan (16-frame `perturb` clips, 100 per job), adds 100 clips, runs again and prints the
jobs per rule that the second run executed and how many clips it wrote. A dry run cannot
know this (refine is a checkpoint: unchanged prompt files are found only once it has run),
so its job counts are printed too. Not a test.

  python benchmarks/dag.py                          # 500 / 5,000 / 20,000 clips
  python benchmarks/dag.py --clips 5000 --rerun 5000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))

from synthvad import plan  # noqa: E402
from synthvad.config import load_config  # noqa: E402


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, nargs="+", default=[500, 5000, 20000])
    parser.add_argument(
        "--clips-per-job", type=int, nargs="+", default=[1, 10], help="synthesize.clips_per_job"
    )
    parser.add_argument("--rerun", type=int, help="also: add 100 clips to an N-clip run")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    return parser.parse_args()


def scaled_config(n_clips: int | None, clips_per_job: int = 1) -> dict[str, Any]:
    """config.yaml, with `n_clips` synthetic clips (None: as shipped)."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    if n_clips is None:
        return config
    config["synthesize"]["clips_per_job"] = clips_per_job
    described = len(plan.described_classes(load_config(ROOT / "config.yaml")))
    per_class = max(1, n_clips // 2 // (2 * described))
    config["describe"]["per_class"] = per_class
    top = (n_clips - 2 * described * per_class) // (len(config["classes"]) + 1)
    config["retrieve"]["top_k"] = top
    config["retrieve"]["normal_top_k"] = n_clips - 2 * described * per_class
    config["retrieve"]["normal_top_k"] -= top * len(config["classes"])
    config["name"] = f"dag{n_clips}"
    return config


def snakemake(workdir: Path, *args: str) -> tuple[float, str]:
    cmd = [
        sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
        "--directory", str(workdir), "--configfile", str(workdir / "config.yaml"), *args,
    ]  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return seconds, proc.stdout + proc.stderr


def job_counts(output: str) -> dict[str, int]:
    table = output.split("Job stats:", 1)[1].split("\n\n", 1)[0] if "Job stats:" in output else ""
    return {m[0]: int(m[1]) for m in re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M)}


def dry_run(config: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "config.yaml").write_text(yaml.safe_dump(config))
        seconds, output = snakemake(workdir, "-n")
    jobs = job_counts(output)
    n_clips = len(plan.clip_ids(load_config_dict(config)))
    return {
        "clips": n_clips,
        "clips_per_job": config["synthesize"].get("clips_per_job", 1),
        "jobs": jobs.get("total", 0),
        "seconds": seconds,
        "by_rule": jobs,
    }


def load_config_dict(config: dict[str, Any]) -> dict[str, Any]:
    from synthvad.config import validate_config

    return validate_config(json.loads(json.dumps(config)))


def clip_targets(config: dict[str, Any]) -> list[str]:
    """The synthetic clips of the plan: the rerun measurement stops at stage 4."""
    validated = load_config_dict(config)
    generator = validated["synthesize"]["backend"]
    return [
        f"results/{config['name']}/synthetic/{generator}/{clip}.mp4"
        for clip in plan.clip_ids(validated)
    ]


def executed(output: str) -> dict[str, int]:
    """Jobs per rule that a real run executed (batch rules counted as `synthesize`)."""
    rules = re.findall(r"^(?:local)?(?:rule|checkpoint) (\w+):", output, flags=re.M)
    counts: dict[str, int] = {}
    for rule in rules:
        name = rule.split("_batch_")[0]
        counts[name] = counts.get(name, 0) + 1
    return counts


def mtimes(workdir: Path, targets: list[str]) -> dict[str, int]:
    return {t: (workdir / t).stat().st_mtime_ns for t in targets}


def rerun_after_adding(n_clips: int, added: int = 100, clips_per_job: int = 100) -> dict[str, Any]:
    """Run stages 1-4 for real on an `n_clips` plan (tiny `perturb` clips, batched), add
    `added` clips, run again, and count the clips the second run wrote."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        config = scaled_config(n_clips, clips_per_job)
        config["synthesize"]["perturb"] = {"frames": 16}
        # Enough candidate frames for the largest top_k, and enough description
        # combinations for describe.per_class (the shipped lists give 48 per class).
        config["retrieve"]["frames_per_video"] = 64
        per_class = config["describe"]["per_class"]
        config["describe"]["locations"] += [f"location number {i}" for i in range(per_class)]
        (workdir / "config.yaml").write_text(yaml.safe_dump(config))
        targets = clip_targets(config)
        first_s, _ = snakemake(workdir, "--cores", "2", *targets)
        before = mtimes(workdir, targets)
        _, output = snakemake(workdir, "-n", *targets)
        assert "Nothing to be done" in output, output[-2000:]
        # The new clips: higher PA-VAD ranks (top_k and normal_top_k) as a user adds them.
        ranks = added // (len(config["classes"]) + 1)
        config["retrieve"]["top_k"] += ranks
        config["retrieve"]["normal_top_k"] += added - ranks * len(config["classes"])
        (workdir / "config.yaml").write_text(yaml.safe_dump(config))
        targets = clip_targets(config)
        dry_s, dry = snakemake(workdir, "-n", *targets)
        seconds, output = snakemake(workdir, "--cores", "2", *targets)
        after = mtimes(workdir, targets)
    rewritten = [t for t, mtime in before.items() if after[t] != mtime]
    return {
        "clips_before": n_clips,
        "clips_after": len(after),
        "clips_per_job": clips_per_job,
        "first_run_seconds": first_s,
        "dry_run_seconds": dry_s,
        "dry_run_by_rule": job_counts(dry),
        "rerun_seconds": seconds,
        "rerun_by_rule": executed(output),
        "clips_written": len(after) - len(before) + len(rewritten),
        "existing_clips_rewritten": len(rewritten),
    }


def main() -> None:
    args = arguments()
    load = os.getloadavg()[0]
    baseline = dry_run(scaled_config(None))
    rows = [dry_run(scaled_config(n, per)) for per in args.clips_per_job for n in args.clips]
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load {load:.2f} at start",
        "baseline": baseline,
        "runs": rows,
    }
    print(
        f"{'clips':>7} {'per job':>7} {'jobs':>7} {'seconds':>8} {'x baseline':>10} {'ms/job':>7}"
    )
    print(f"{baseline['clips']:>7} {1:>7} {baseline['jobs']:>7} {baseline['seconds']:>8.1f}")
    for row in rows:
        extra = (row["seconds"] - baseline["seconds"]) / max(1, row["jobs"] - baseline["jobs"])
        row["ms_per_job"] = 1000 * extra  # above the baseline's fixed cost
        row["x_baseline"] = row["seconds"] / baseline["seconds"]
        print(
            f"{row['clips']:>7} {row['clips_per_job']:>7} {row['jobs']:>7} {row['seconds']:>8.1f} "
            f"{row['x_baseline']:>10.1f} {row['ms_per_job']:>7.2f}"
        )
    if args.rerun:
        rerun = report["rerun"] = rerun_after_adding(args.rerun)
        print(
            f"\nadding clips: {rerun['clips_before']} -> {rerun['clips_after']}; the rerun took "
            f"{rerun['rerun_seconds']:.0f} s (first run {rerun['first_run_seconds']:.0f} s) and "
            f"wrote {rerun['clips_written']} clips ({rerun['existing_clips_rewritten']} existing)"
        )
        print("jobs run:", json.dumps(rerun["rerun_by_rule"]))
        print("dry run listed (before refine re-ran):", json.dumps(rerun["dry_run_by_rule"]))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()

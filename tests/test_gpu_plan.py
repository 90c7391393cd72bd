"""The GPU-hour plan's arithmetic on fake `snakemake --summary` output and sidecars."""

from __future__ import annotations

import json

import pytest

from synthvad.synthesize import gpu_plan, jobs

from .test_synthesize_diffusers import minimal_config

HEADER = "output_file\tdate\trule\tlog-file(s)\tstatus\tplan\n"


def summary(rows: list[tuple[str, str, str]]) -> str:
    return HEADER + "".join(f"{path}\t-\t{rule}\t-\tmissing\t{plan}\n" for path, rule, plan in rows)


def test_pending_clips_are_the_synthesis_videos_to_update():
    text = summary(
        [
            ("results/r/synthetic/cogvideox/gvvad-a-000-abnormal.mp4", "synthesize", "update pending"),
            ("results/r/synthetic/cogvideox/gvvad-a-000-abnormal.json", "synthesize", "update pending"),
            ("results/r/synthetic/cogvideox/gvvad-a-000-normal.mp4", "synthesize", "no update"),
            ("results/r/synthetic/wan_i2v/pavad-a-000.mp4", "synthesize_batch_pavad_0000_0003", "update pending"),
            ("results/r/filtered.parquet", "filter", "update pending"),
        ]
    )  # fmt: skip
    pending = gpu_plan.pending_clips("Building DAG of jobs...\n" + text)
    assert pending.values.tolist() == [
        ["cogvideox", "gvvad-a-000-abnormal"],
        ["wan_i2v", "pavad-a-000"],
    ]


def _config(**section):
    config = minimal_config(backend={"gvvad": "cogvideox"}, clips_per_job=4,
                            cogvideox={"model": "x", **section})  # fmt: skip
    config["name"] = "r"
    return config


def test_measured_seconds_from_sidecars_with_the_same_settings(tmp_path):
    config = _config(steps=4)
    digest = jobs.settings_digest(jobs.rule_params(config, "cogvideox"))
    folder = tmp_path / "results" / "r" / "synthetic" / "cogvideox"
    folder.mkdir(parents=True)
    for i, (seconds, load, key) in enumerate(
        [(30.0, 100.0, digest), (50.0, 120.0, digest), (40.0, 90.0, digest), (999.0, 9.0, "old")]
    ):
        (folder / f"c{i}.json").write_text(
            json.dumps({"seconds": seconds, "load_seconds": load, "settings_digest": key})
        )
    pending = [(f"results/r/synthetic/cogvideox/gvvad-a-{i:03d}-abnormal.mp4", "synthesize",
                "update pending") for i in range(10)]  # fmt: skip
    plans, cpu = gpu_plan.make_plan(config, summary(pending), tmp_path)
    (plan,) = plans
    assert cpu == 0 and (plan.clips, plan.jobs) == (10, 3)  # ceil(10 / clips_per_job 4)
    assert (plan.seconds_per_clip, plan.load_seconds) == (40.0, 100.0)  # medians, "old" left out
    assert plan.gpu_hours == pytest.approx((10 * 40 + 3 * 100) / 3600)
    assert "median of 3 clips" in plan.source
    # Two GPUs: half the GPU-hours; 100 GPUs: the longest job (load + 4 clips).
    assert gpu_plan.wall_hours(plans, 2) == pytest.approx(700 / 3600 / 2)
    assert gpu_plan.wall_hours(plans, 100) == pytest.approx((100 + 4 * 40) / 3600)


def test_reference_seconds_scaled_when_nothing_is_measured(tmp_path):
    config = _config(steps=25, frames=25, width=368, height=240)
    pending = [("results/r/synthetic/cogvideox/gvvad-a-000-normal.mp4", "synthesize",
                "update pending"), ("results/r/synthetic/perturb/pavad-b-000.mp4", "synthesize",
                "update pending")]  # fmt: skip
    plans, cpu = gpu_plan.make_plan(config, summary(pending), tmp_path)
    (plan,) = plans
    # 90 s at 50 steps, 49x720x480 -> half the steps, 25/49 of the frames, 368x240 pixels.
    assert plan.seconds_per_clip == pytest.approx(90 * 0.5 * (25 / 49) * (368 * 240) / (720 * 480))
    assert plan.load_seconds == 600  # load_minutes 10
    assert cpu == 1
    text = gpu_plan.render(plans, cpu, 1)
    assert "nothing measured with these settings" in text and "CogVideoX-5b model card" in text
    assert "1 clips from the CPU renderer" in text
    assert gpu_plan.reference_seconds("wan_i2v", 4, 81, 832, 480) == pytest.approx(575 * 4 / 25)
    assert "up to date" in gpu_plan.render([], 0, 4)

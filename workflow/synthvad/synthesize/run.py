"""Stage 4 driver: clips from their prompt files (synthvad.prompts) through the configured
generator.

A generator is opened once per job (a diffusers model load is the expensive part) and
then makes each of the job's clips. The driver owns the per-clip seed, the mp4 writing
and the JSON sidecar, so every backend gets them alike.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from synthvad.io.atomic import write_json
from synthvad.io.video import write_video
from synthvad.prompts import read_clip_prompts
from synthvad.synthesize import registry
from synthvad.synthesize.base import Clip, ClipGenerator, clip_seed
from synthvad.synthesize.jobs import settings_digest
from synthvad.synthesize.perturb import PerturbGenerator

log = logging.getLogger(__name__)


def open_generator(
    backend: str, settings: dict[str, Any], runtime: dict[str, Any]
) -> ClipGenerator:
    """The configured generator, ready to make clips; diffusers (and torch) are imported
    only when a diffusers generator runs."""
    if not registry.get(backend).is_diffusers:
        return PerturbGenerator(settings, runtime)
    from synthvad.synthesize.diffusion import DiffusersGenerator

    return DiffusersGenerator.load(backend, settings, runtime)


def sidecar(prompt: dict[str, Any], clip: Clip, seed: int, n_frames: int) -> dict[str, Any]:
    height, width = clip.frames.shape[1:3]
    return {
        "clip_id": prompt["clip_id"],
        "method": prompt["method"],
        "class": prompt["class"],
        "label": int(prompt["label"]),
        "prompt": prompt["prompt"],
        "negative_prompt": prompt.get("negative_prompt"),
        "init_image": prompt.get("init_image"),
        "peak_gpu_memory_bytes": None,
        **clip.meta,
        "seed": seed,
        "fps": clip.fps,
        "frames": n_frames,
        "resolution": [int(width), int(height)],
    }


def run(
    params: dict[str, Any],
    runtime: dict[str, Any],
    prompt_files: Sequence[str],
    videos: Sequence[str],
    sidecars: Sequence[str],
) -> None:
    """Make the clips named by `videos` ({clip_id}.mp4) and their JSON `sidecars`.

    `params` is the rule's params (backend, seed, settings: what a clip is); `runtime`
    only says how to make them (device, offload, ...), see synthvad.synthesize.jobs.
    """
    clip_ids = [Path(v).stem for v in videos]
    if [Path(s).stem for s in sidecars] != clip_ids:
        raise ValueError(f"videos {list(videos)} and sidecars {list(sidecars)} do not pair up")
    prompts = read_clip_prompts(prompt_files)
    if sorted(prompts) != sorted(clip_ids):
        raise ValueError(f"prompt files {list(prompt_files)} do not match the clips {clip_ids}")
    started = time.perf_counter()
    generator = open_generator(params["backend"], params["settings"], runtime)
    load_seconds = round(time.perf_counter() - started, 3)
    clips = zip(clip_ids, videos, sidecars, strict=True)
    bar = tqdm(clips, total=len(clip_ids), desc="clips", unit="clip", file=sys.stderr)
    for clip_id, video, sidecar_path in bar:
        seed = clip_seed(params["seed"], clip_id)
        clip_started = time.perf_counter()
        clip = generator.generate(prompts[clip_id], seed, clip_id)
        n = write_video(video, clip.frames, clip.fps)
        seconds = round(time.perf_counter() - clip_started, 3)
        record = sidecar(prompts[clip_id], clip, seed, n)
        record.update(seconds=seconds, load_seconds=load_seconds, clips_in_job=len(clip_ids))
        record["settings_digest"] = settings_digest(params)  # for the GPU plan
        write_json(record, sidecar_path)
        log.info("clip %s: %d frames %s in %.1f s", clip_id, n, record["resolution"], seconds)

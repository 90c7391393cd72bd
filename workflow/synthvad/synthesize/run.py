"""Stage 4 driver: one clip from prompts.parquet through the configured backend.

Backends plug in by name; each returns uint8 frames [T, H, W, 3]. The driver owns the
per-clip seed, the mp4 writing and the JSON sidecar, so every backend gets them alike.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from synthvad.io.atomic import write_json
from synthvad.io.video import write_video

log = logging.getLogger(__name__)

Backend = Callable[[dict[str, Any], dict[str, Any], int], np.ndarray]


def clip_seed(global_seed: int, clip_id: str) -> int:
    """A per-clip seed from (global seed, clip id): stable across runs and machines."""
    digest = hashlib.sha256(f"{global_seed}:{clip_id}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def _perturb(prompt: dict[str, Any], cfg: dict[str, Any], seed: int) -> np.ndarray:
    from synthvad.synthesize.perturb import render_clip

    init = None
    if prompt.get("init_image"):
        init = np.asarray(Image.open(prompt["init_image"]).convert("RGB"))
    return render_clip(
        cls=prompt["class"],
        init_image=init,
        location=prompt.get("location"),
        n_frames=cfg["frames"],
        rng=np.random.default_rng(seed),
        abnormal=bool(prompt["label"]),
    )


BACKENDS: dict[str, Backend] = {"perturb": _perturb}


def get_backend(name: str) -> Backend:
    if name not in BACKENDS:
        raise ValueError(
            f"synthesize.backend: unknown backend {name!r} (known: {sorted(BACKENDS)})"
        )
    return BACKENDS[name]


def load_prompt(prompts_path: str, clip_id: str) -> dict[str, Any]:
    prompts = pd.read_parquet(prompts_path)
    match = prompts[prompts["clip_id"] == clip_id]
    if len(match) != 1:
        raise ValueError(f"{prompts_path}: {len(match)} prompts for clip {clip_id!r}, expected 1")
    rec = match.iloc[0].to_dict()
    return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in rec.items()}


def run(
    config: dict[str, Any], prompts_path: str, clip_id: str, out_video: str, out_sidecar: str
) -> None:
    cfg = config["synthesize"]
    prompt = load_prompt(prompts_path, clip_id)
    seed = clip_seed(config["seed"], clip_id)
    started = time.perf_counter()
    frames = get_backend(cfg["backend"])(prompt, cfg, seed)
    n = write_video(out_video, frames, cfg["fps"])
    write_json(
        {
            "clip_id": clip_id,
            "method": prompt["method"],
            "class": prompt["class"],
            "label": int(prompt["label"]),
            "prompt": prompt["prompt"],
            "negative_prompt": prompt.get("negative_prompt"),
            "init_image": prompt.get("init_image"),
            "model": cfg["backend"],
            "revision": None,
            "steps": None,
            "guidance": None,
            "seed": seed,
            "fps": cfg["fps"],
            "frames": n,
            "resolution": [int(frames.shape[2]), int(frames.shape[1])],
            "seconds": round(time.perf_counter() - started, 3),
            "peak_gpu_memory_bytes": None,
        },
        out_sidecar,
    )
    log.info("clip %s: %d frames in %.1f s", clip_id, n, time.perf_counter() - started)

"""A small, seeded surveillance-style dataset drawn with numpy, so the workflow runs anywhere.

Each video is a fixed camera on one scene with people walking (and cars on
the street); abnormal videos also contain one rule-based event. Every video
gets its own rng seeded from (seed, split, label, index), so a video does not
change when the counts of other groups do, and the same seed gives identical
pixels.
"""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from synthvad.index import MANIFEST_COLUMNS
from synthvad.io.atomic import write_text
from synthvad.io.video import write_video
from synthvad.render import (
    EVENT_CLASSES,
    apply_sensor_noise,
    render_background,
    render_event,
    render_normal_clip,
    scene_layout,
)

EVENT_SECONDS = (2.0, 5.0)  # duration range of an anomaly inside a video
_SPLIT_CODE = {"train": 0, "test": 1}


@dataclass(frozen=True)
class VideoSpec:
    video_id: str
    split: str
    label: int
    cls: str
    scene: str
    seed: tuple[int, ...]


def plan_videos(cfg: dict[str, Any], seed: int) -> list[VideoSpec]:
    """Every video's identity, class and scene, in manifest order."""
    scenes, classes = list(cfg["scenes"]), list(cfg["classes"])
    specs = []
    for split in ("train", "test"):
        for label, kind in ((0, "normal"), (1, "abnormal")):
            for k in range(int(cfg[f"{split}_{kind}"])):
                if label:
                    cls = classes[k % len(classes)]
                    scene = _event_scene(cls, k, len(classes), _SPLIT_CODE[split], scenes)
                else:
                    cls, scene = "normal", scenes[k % len(scenes)]
                specs.append(
                    VideoSpec(
                        video_id=f"{split}_{kind}_{k:03d}",
                        split=split,
                        label=label,
                        cls=cls,
                        scene=scene,
                        seed=(seed, _SPLIT_CODE[split], label, k),
                    )
                )
    return specs


def _event_scene(cls: str, k: int, n_classes: int, split_code: int, scenes: list[str]) -> str:
    """Cycle scenes over abnormal videos, shifted per pass over the classes and per split,
    so no class is tied to one scene; car crashes stay on the street when there is one."""
    if cls == "road_accident" and "street" in scenes:
        return "street"
    return scenes[(k + k // n_classes + split_code) % len(scenes)]


def event_interval(n_frames: int, fps: float, rng: np.random.Generator) -> tuple[int, int]:
    """A [start, end) window of 2-5 s, not at the very start and leaving a short normal tail.

    Short videos shrink the lead-in, tail and event so the window always fits.
    """
    lead = min(round(fps), n_frames // 4)
    tail = min(round(fps / 2), n_frames // 8)
    length = round(rng.uniform(*EVENT_SECONDS) * fps)
    length = int(np.clip(length, 1, n_frames - lead - tail))
    start = int(rng.integers(lead, n_frames - tail - length + 1))
    return start, start + length


def render_video(spec: VideoSpec, cfg: dict[str, Any]) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The frames of one demo video and its anomaly intervals."""
    rng = np.random.default_rng(spec.seed)
    width, height, fps = int(cfg["width"]), int(cfg["height"]), float(cfg["fps"])
    n_frames = round(rng.uniform(*cfg["seconds"]) * fps)
    layout = scene_layout(spec.scene)
    background = render_background(spec.scene, width, height, rng)
    n_people = int(rng.integers(2, 6))
    n_vehicles = int(rng.integers(1, 4)) if spec.scene == "street" else 0
    frames = render_normal_clip(
        background, n_frames, rng, n_people, n_vehicles, layout, sensor_noise=False
    )
    intervals: list[tuple[int, int]] = []
    if spec.label:
        start, end = event_interval(n_frames, fps, rng)
        render_event(spec.cls, frames, start, end, rng, layout)
        intervals.append((start, end))
    apply_sensor_noise(frames, rng)  # after the event, so it flickers with the scene
    return frames, intervals


def _check(cfg: dict[str, Any]) -> None:
    """Fail before drawing anything on names the renderer does not know."""
    for scene in cfg["scenes"]:
        scene_layout(scene)  # raises, naming the valid scenes
    unknown = sorted(set(cfg["classes"]) - set(EVENT_CLASSES))
    if unknown:
        raise ValueError(
            f"demo classes {unknown} cannot be rendered; valid classes: {', '.join(EVENT_CLASSES)}"
        )
    if int(cfg["width"]) % 2 or int(cfg["height"]) % 2:
        raise ValueError(f"demo frame size must be even, got {cfg['width']}x{cfg['height']}")
    if min(cfg["seconds"]) * float(cfg["fps"]) < 8:
        raise ValueError(f"demo videos need at least 8 frames; seconds={cfg['seconds']}")


def _write_one(spec: VideoSpec, cfg: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Render and encode one video; its manifest row."""
    frames, intervals = render_video(spec, cfg)
    rel = Path("videos", spec.split, f"{spec.video_id}.mp4")
    write_video(out_dir / rel, frames, float(cfg["fps"]))
    return {
        "video_id": spec.video_id,
        "path": rel.as_posix(),
        "split": spec.split,
        "label": spec.label,
        "class": spec.cls,
        "scene": spec.scene,
        "intervals": json.dumps([list(iv) for iv in intervals]),
    }


def generate_demo(
    cfg: dict[str, Any], out_dir: Path, seed: int, processes: int = 1
) -> pd.DataFrame:
    """Write the demo videos under out_dir/videos/{split}/ and out_dir/manifest.csv.

    Videos are rendered by `processes` worker processes (each video has its own seed, so
    the files do not depend on it). The manifest is written last, so its presence means
    every video is complete.
    """
    _check(cfg)
    out_dir = Path(out_dir)
    specs = plan_videos(cfg, seed)
    bar = tqdm(total=len(specs), desc="demo videos", unit="video")
    if processes > 1:
        with ProcessPoolExecutor(processes) as pool, bar:
            futures = [pool.submit(_write_one, spec, cfg, out_dir) for spec in specs]
            for _done in as_completed(futures):
                bar.update()
            rows = [future.result() for future in futures]
    else:
        rows = []
        with bar:
            for spec in specs:
                rows.append(_write_one(spec, cfg, out_dir))
                bar.update()
    manifest = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    write_text(manifest.to_csv(index=False), out_dir / "manifest.csv")
    return manifest

"""The offline "perturb" video-synthesis backend: rule-based events over a still background.

It stands in for a text/image-to-video model so the workflow runs without
weights or a GPU. An image prompt (a frame retrieved from a real normal video)
becomes the static background; a text prompt's location picks a drawn scene.
This module holds its registry entry, its generator and the renderer.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from synthvad.render import (
    EVENT_CLASSES,
    apply_sensor_noise,
    render_background,
    render_event,
    render_generic_anomaly,
    render_normal_clip,
    scene_from_text,
    scene_layout,
)
from synthvad.render.actors import GENERIC_LAYOUT, SceneLayout
from synthvad.synthesize.base import Clip
from synthvad.synthesize.spec import CORE_ENV, GeneratorSpec

log = logging.getLogger(__name__)

PERTURB = GeneratorSpec(
    name="perturb",
    # Draws over an initial image when the prompt has one, else over a scene from the text.
    image_to_video=False,
    conda_env=CORE_ENV,
    fixed_resources={"gpu": 0, "mem_mb": 1000, "runtime": 30},
)

TEXT_WIDTH, TEXT_HEIGHT = 160, 120  # size of clips synthesised from text alone
EVENT_COVERAGE = (0.8, 0.95)  # fraction of the clip the anomaly spans (the whole clip is labelled)


def _even_crop(image: np.ndarray) -> np.ndarray:
    """Drop a last row/column if needed: H.264 (yuv420p) needs even frame sizes."""
    height, width = image.shape[:2]
    return image[: height - height % 2, : width - width % 2]


def _background(
    init_image: np.ndarray | None, location: str | None, rng: np.random.Generator
) -> tuple[np.ndarray, SceneLayout, str | None]:
    """Background, actor layout and scene (None when it comes from an unknown image)."""
    if init_image is None:
        scene = scene_from_text(location or "")
        background = render_background(scene, TEXT_WIDTH, TEXT_HEIGHT, rng)
        return background, scene_layout(scene), scene
    image = np.asarray(init_image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"init_image must be uint8 [H, W, 3], got {image.shape} {image.dtype}")
    if min(image.shape[:2]) < 16:
        raise ValueError(f"init_image is too small to draw on: {image.shape[1]}x{image.shape[0]}")
    # Where the real frame's walkways are is unknown, so actors use the generic layout.
    return np.ascontiguousarray(_even_crop(image)), GENERIC_LAYOUT, None


def render_clip(
    cls: str,
    init_image: np.ndarray | None,
    location: str | None,
    n_frames: int,
    rng: np.random.Generator,
    abnormal: bool,
) -> np.ndarray:
    """A uint8 [n_frames, H, W, 3] clip of normal activity, plus event `cls` when `abnormal`.

    The event spans most of the clip, because the clip as a whole carries the
    abnormal label. A class without a rule gets a generic fast-moving object.
    """
    if n_frames < 1:
        raise ValueError(f"n_frames must be positive, got {n_frames}")
    background, layout, scene = _background(init_image, location, rng)
    n_people = int(rng.integers(1, 4))
    n_vehicles = int(rng.integers(1, 3)) if scene == "street" else 0
    frames = render_normal_clip(
        background, n_frames, rng, n_people, n_vehicles, layout, sensor_noise=False
    )
    if abnormal:
        length = max(1, round(rng.uniform(*EVENT_COVERAGE) * n_frames))
        start = int(rng.integers(0, n_frames - length + 1))
        if cls in EVENT_CLASSES:
            render_event(cls, frames, start, start + length, rng, layout)
        else:
            log.warning(
                "no perturb rule for class %r (rules: %s); drawing a generic fast-moving object",
                cls,
                ", ".join(EVENT_CLASSES),
            )
            render_generic_anomaly(frames, start, start + length, rng, layout)
    apply_sensor_noise(frames, rng)  # also keeps frames of a still image from being identical
    return frames


class PerturbGenerator:
    """render_clip behind the stage-4 generator interface (synthvad.synthesize.base)."""

    def __init__(self, settings: dict[str, Any], runtime: dict[str, Any]) -> None:
        self.frames = settings["frames"]
        self.fps = float(settings["fps"])

    def generate(self, prompt: dict[str, Any], seed: int, clip_id: str) -> Clip:
        from PIL import Image

        init = None
        if prompt.get("init_image"):
            init = np.asarray(Image.open(prompt["init_image"]).convert("RGB"))
        frames = render_clip(
            cls=prompt["class"],
            init_image=init,
            location=prompt.get("location"),
            n_frames=self.frames,
            rng=np.random.default_rng(seed),
            abnormal=bool(prompt["label"]),
        )
        meta = {"backend": PERTURB.name, "model": "perturb", "revision": None, "steps": None}
        return Clip(frames=frames, fps=self.fps, meta={**meta, "guidance": None})

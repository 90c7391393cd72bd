"""The offline "perturb" video-synthesis backend: rule-based events over a still background.

It stands in for a text/image-to-video model so the workflow runs without
weights or a GPU. An image prompt (a frame retrieved from a real normal video)
becomes the static background; a text prompt's location picks a drawn scene.
"""

from __future__ import annotations

import logging

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

log = logging.getLogger(__name__)

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

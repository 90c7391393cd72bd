"""Frame strips: a few frames of a clip side by side as one small JPEG.

The filter makes one per clip from the frames it already decoded for its scores (stored in
its chunk files); the report's gallery shows them without decoding the clip again."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

STRIP_FRAMES = 6
STRIP_HEIGHT = 72
STRIP_QUALITY = 70


def jpeg(image: Image.Image, quality: int = STRIP_QUALITY) -> bytes:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=quality, optimize=False)
    return buf.getvalue()


def evenly(frames: np.ndarray, n: int = STRIP_FRAMES) -> np.ndarray:
    """At most `n` of the frames, evenly spaced, first and last included."""
    if len(frames) <= n:
        return frames
    return frames[np.round(np.linspace(0, len(frames) - 1, n)).astype(int)]


def strip_jpeg(frames: np.ndarray, height: int = STRIP_HEIGHT) -> bytes:
    """JPEG of the frames ([N, H, W, 3] uint8) side by side, each `height` px high."""
    h, w = frames.shape[1:3]
    width = max(1, round(w * height / h))
    strip = Image.new("RGB", (width * len(frames), height))
    for i, frame in enumerate(frames):
        tile = Image.fromarray(frame).resize((width, height), Image.Resampling.BILINEAR, None, 2.0)
        strip.paste(tile, (i * width, 0))
    return jpeg(strip)

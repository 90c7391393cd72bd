"""What every stage-4 generator shares: the clip it returns, the interface it offers the
driver (synthvad.synthesize.run), the per-clip seed it is given and the error it raises.

Generator modules import this one, never the driver, so the driver can import them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


class SynthesisError(RuntimeError):
    """A generator that cannot run as configured; the message names the config key."""


@dataclass
class Clip:
    frames: np.ndarray  # uint8 [T, H, W, 3]
    fps: float
    meta: dict[str, Any] = field(default_factory=dict)  # sidecar fields the backend knows


class ClipGenerator(Protocol):
    """Made once per job (loading a model is the expensive part), then asked for each clip."""

    def generate(self, prompt: dict[str, Any], seed: int, clip_id: str) -> Clip: ...


def clip_seed(global_seed: int, clip_id: str) -> int:
    """A per-clip seed from (global seed, clip id): stable across runs and machines."""
    digest = hashlib.sha256(f"{global_seed}:{clip_id}".encode()).digest()
    return int.from_bytes(digest[:4], "little")

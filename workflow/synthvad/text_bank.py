"""The class-text bank LAP turns into pseudo labels: CLIP text embeddings of every
anomaly class's name and its retrieval prompt, cached as a rule output."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from synthvad.io.atomic import atomic_path

log = logging.getLogger(__name__)


def bank_texts(classes: list[dict[str, str]]) -> list[str]:
    """Two entries per class, as GV-VAD's bank holds words and phrases: the name, the prompt."""
    return [text for c in classes for text in (c["name"].replace("_", " "), c["positive"])]


def run(config: dict[str, Any], out_path: str) -> np.ndarray:
    """Encode the bank with the configured CLIP text encoder; write float32 [K, E] .npy."""
    from synthvad.clip_model import load_clip

    texts = bank_texts(config["classes"])
    bundle = load_clip(config["clip"], seed=config["seed"])
    bank = bundle.encode_texts(texts).astype(np.float32)
    with atomic_path(out_path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, bank)
    log.info("class-text bank: %d texts, %d dims (%s)", *bank.shape, bundle.name)
    return bank

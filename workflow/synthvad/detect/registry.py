"""Detector models by name, as config.yaml's `detectors.<name>.model` selects them."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from synthvad.detect.darm import DARM
from synthvad.detect.lap import LAP
from synthvad.detect.models import FeatureAutoencoder, MILRanking, TopKBCE
from synthvad.detect.urdmu import URDMU

# model name -> class(dim, detector config); new detectors register here and in the schema.
DETECTORS: dict[str, Callable[[int, dict], nn.Module]] = {
    "mil_ranking": MILRanking,
    "topk_bce": TopKBCE,
    "lap": LAP,
    "urdmu": URDMU,
    "darm": DARM,
    "spr_unsupervised": FeatureAutoencoder,
}


def build_detector(model: str, dim: int, cfg: dict) -> nn.Module:
    """Instantiate the detector `model` for `dim`-dimensional features."""
    if model not in DETECTORS:
        raise ValueError(f"unknown detector model {model!r}; valid: {sorted(DETECTORS)}")
    return DETECTORS[model](dim, cfg)


def fixed_length(model: str) -> bool:
    """Whether `model` trains on videos all resampled to one length (UR-DMU's loader)."""
    return bool(getattr(DETECTORS[model], "fixed_length", False))

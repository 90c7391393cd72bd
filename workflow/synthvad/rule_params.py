"""Config sections in the form rules take them as params."""

from __future__ import annotations

from typing import Any


def canonical(value: Any) -> Any:
    """Mappings with keys sorted, recursively: rule params that do not change when a
    user merely reorders keys in config.yaml (Snakemake compares params as written)."""
    if isinstance(value, dict):
        return {key: canonical(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value

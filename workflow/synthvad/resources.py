"""Rule resources that grow with Snakemake's attempt number.

A job killed for memory or time is retried (`retries:` in the profiles) with twice the
resources of the previous attempt, so a retry can succeed where a plain rerun of the same
request would be killed again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def grows(base: int) -> Callable[..., int]:
    """`base` at attempt 1, doubled at each retry: a resource callable for a rule."""

    def resource(wildcards: Any, attempt: int) -> int:
        return int(base * 2 ** (attempt - 1))

    return resource


def grows_with(size: Callable[[Any], int]) -> Callable[..., int]:
    """The same for a per-job size computed from the wildcards."""

    def resource(wildcards: Any, attempt: int) -> int:
        return int(size(wildcards) * 2 ** (attempt - 1))

    return resource

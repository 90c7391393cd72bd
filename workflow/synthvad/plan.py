"""What the config asks to synthesize: clip ids are a pure function of the config.

The Snakefile expands these ids statically, so `snakemake -n` lists every synthesis
job before anything runs, and the refine stage checks its prompts against them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

NORMAL = "normal"


def pavad_clip_id(cls: str, rank: int) -> str:
    return f"pavad-{cls}-{rank:03d}"


def gvvad_clip_id(cls: str, index: int, abnormal: bool) -> str:
    return f"gvvad-{cls}-{index:03d}-{'abnormal' if abnormal else 'normal'}"


def clip_rank(clip_id: str) -> int:
    """The draw / retrieval rank in a clip id (gvvad-<cls>-<i>-<kind>, pavad-<cls>-<r>)."""
    parts = clip_id.split("-")
    if len(parts) < 3 or not parts[2].isdigit():
        raise ValueError(f"clip id {clip_id!r} has no rank (expected <method>-<class>-<rank>)")
    return int(parts[2])


def rank_chunks(clip_ids: Iterable[str], per_chunk: int) -> dict[str, tuple[str, ...]]:
    """Stable chunks of clips for filter, feature and synthesis jobs.

    A chunk holds the clips of a range of ranks (the draw index of a GV-VAD clip, the
    retrieval rank of a PA-VAD one) over all classes. Raising describe.per_class or
    retrieve.top_k / normal_top_k only adds higher ranks, so new clips join the chunk of
    their rank range or new ones, and every other chunk keeps its clips and its cache.

    Chunk name (ranks-<first>-<last>) -> clip ids: consecutive ranks, as many as keep a
    chunk at about `per_chunk` clips (judged by the most crowded rank, rank 0)."""
    if per_chunk < 1:
        raise ValueError(f"clips per chunk must be positive, got {per_chunk}")
    by_rank: dict[int, list[str]] = {}
    for clip_id in clip_ids:
        by_rank.setdefault(clip_rank(clip_id), []).append(clip_id)
    if not by_rank:
        return {}
    ranks = max(1, per_chunk // max(len(ids) for ids in by_rank.values()))
    chunks: dict[str, list[str]] = {}
    for rank in sorted(by_rank):
        first = rank // ranks * ranks
        chunks.setdefault(f"ranks-{first:04d}-{first + ranks - 1:04d}", []).extend(
            sorted(by_rank[rank])
        )
    return {name: tuple(ids) for name, ids in chunks.items()}


def used_methods(config: dict[str, Any]) -> list[str]:
    """Synthesis methods some experiment trains on, in a fixed order."""
    wanted = {m for exp in config["experiments"].values() for m in exp.get("synthetic", [])}
    return [m for m in ("gvvad", "pavad") if m in wanted]


def described_classes(config: dict[str, Any]) -> list[str]:
    """Classes that have at least one event in describe.events (GV-VAD needs one)."""
    with_events = {e["class"] for e in config.get("describe", {}).get("events", [])}
    return [c["name"] for c in config["classes"] if c["name"] in with_events]


def clip_ids(config: dict[str, Any], method: str | None = None) -> list[str]:
    """Every synthetic clip id of the used methods (or of one method)."""
    methods = used_methods(config) if method is None else [method]
    ids: list[str] = []
    if "gvvad" in methods:
        for cls in described_classes(config):
            for i in range(config["describe"]["per_class"]):
                ids += [gvvad_clip_id(cls, i, True), gvvad_clip_id(cls, i, False)]
    if "pavad" in methods:
        retrieve = config["retrieve"]
        for cls in config["classes"]:
            ids += [pavad_clip_id(cls["name"], r) for r in range(retrieve["top_k"])]
        ids += [pavad_clip_id(NORMAL, r) for r in range(retrieve["normal_top_k"])]
    return ids

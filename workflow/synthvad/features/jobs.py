"""Stages 5 and 6 as Snakemake jobs: how videos split into chunks, and which config keys
are rule params. Nothing here imports torch: the Snakefile calls it at parse time.

Real videos split into `features.real_chunks` jobs, balanced by frame count once the index
exists. Synthetic clips are known from the config alone, so their chunks are static and
stable: synthvad.plan.rank_chunks (a range of ranks over all classes and methods).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from synthvad.rule_params import canonical

# Keys of `features` that decide only how features are computed, not what they are:
# changing them reruns nothing (a new chunk count writes new chunk files, though).
RUNTIME_KEYS = ("real_chunks", "clips_per_chunk", "batch_size", "workers", "threads")
CLIP_RUNTIME_KEYS = ("device", "batch_size")


def real_chunk_names(n_chunks: int) -> list[str]:
    return [f"{k:03d}" for k in range(n_chunks)]


def balanced_chunks(n_frames: Mapping[str, int], n_chunks: int) -> list[list[str]]:
    """Video ids in `n_chunks` lists of about equal frame totals (longest first, each to
    the lightest list), sorted within a list; deterministic for a given index."""
    totals = [0] * n_chunks
    chunks: list[list[str]] = [[] for _ in range(n_chunks)]
    for video_id, frames in sorted(n_frames.items(), key=lambda kv: (-kv[1], kv[0])):
        lightest = min(range(n_chunks), key=lambda k: (totals[k], k))
        chunks[lightest].append(video_id)
        totals[lightest] += frames
    return [sorted(chunk) for chunk in chunks]


# Keys of `features` that only the clip extractor reads (motion describes every frame).
CLIP_ONLY_KEYS = (
    "sampling",
    "frames_per_segment",
    "stride",
    "crops",
    "ten_crop_resize",
    "precision",
)


# The I3D extractors (synthvad.features.i3d_extract) and the name their tag starts with.
I3D_TAGS = {"i3d": "i3d-inception", "i3d_resnet50": "i3d-resnet50"}
I3D_ONLY_KEYS = ("i3d",)


def extractor_tag(config: Mapping[str, Any]) -> str:
    """A path-safe name of the configured extractor (the features/{tag}/ folder):
    clip-<model>-<weights>, motion-grid<G>, i3d-inception-<weights> or i3d-resnet50-<weights>."""
    features = config["features"]
    if features["extractor"] == "motion":
        return f"motion-grid{features['motion']['grid']}"
    from synthvad.clip_model import weights_tag

    if features["extractor"] in I3D_TAGS:
        return f"{I3D_TAGS[features['extractor']]}-{weights_tag(features['i3d']['weights'])}"
    from synthvad.clip_model import clip_tag

    return clip_tag(config["clip"])


def params(config: Mapping[str, Any]) -> dict[str, Any]:
    """What a feature chunk depends on besides its videos: its rerun trigger. The motion
    extractor has no weights and no seed, so neither `clip` nor `seed` reruns it."""
    features = {k: v for k, v in config["features"].items() if k not in RUNTIME_KEYS}
    if features["extractor"] == "motion":
        kept = {k: v for k, v in features.items() if k not in CLIP_ONLY_KEYS + I3D_ONLY_KEYS}
        return canonical({"features": kept, "segments": config["segments"]})
    if features["extractor"] in I3D_TAGS:
        kept = {k: v for k, v in features.items() if k not in ("motion", "sampling", "frames_per_segment", "stride")}  # fmt: skip
        kept["i3d"] = {"weights": features["i3d"]["weights"]}  # device, batch: how, not what
        return canonical({"features": kept, "segments": config["segments"], "seed": config["seed"]})
    clip = {k: v for k, v in config["clip"].items() if k not in CLIP_RUNTIME_KEYS}
    features.pop("motion", None)
    features.pop("i3d", None)
    return canonical(
        {"clip": clip, "features": features, "segments": config["segments"], "seed": config["seed"]}
    )


def runtime(config: Mapping[str, Any]) -> dict[str, Any]:
    """How features are computed: device, batch size, decoding workers, threads."""
    features = config["features"]
    i3d = features["extractor"] in I3D_TAGS
    return {
        "device": features["i3d"]["device"] if i3d else config["clip"]["device"],
        "batch_size": features["i3d"]["batch_size"] if i3d else features["batch_size"],
        "workers": features["workers"],
        "threads": features["threads"],
    }


def uses_gpu(config: Mapping[str, Any]) -> int:
    """The `gpu` resource: 1 only for a network extractor whose device names CUDA (clip.device,
    features.i3d.device; auto stays on CPU nodes); the motion extractor runs on CPUs."""
    return int(
        str(runtime(config)["device"]).startswith("cuda")
        and config["features"]["extractor"] != "motion"
    )

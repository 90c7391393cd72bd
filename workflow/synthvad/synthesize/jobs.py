"""Stage 4 as Snakemake jobs: which generator makes each clip, how clips group into jobs,
what each job declares to the scheduler, and which config keys are rule params.

A generator section (synthesize.<generator>) holds keys that decide *what* a clip is
(model, size, steps, guidance, ...) and keys that decide only *how* it is made (device,
offload, attention kernel, resources). Only the first kind are rule params: switching on
CPU offload after an out-of-memory error must not regenerate the clips already made.
Nothing here imports torch: the Snakefile calls it at parse time. What each generator
is (image-to-video, diffusers, resources, conda environment) comes from registry.py.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from synthvad.config import ConfigError
from synthvad.plan import rank_chunks
from synthvad.rule_params import canonical
from synthvad.synthesize import registry
from synthvad.synthesize.spec import METHODS, DiffusersSpec

GENERATORS = tuple(registry.GENERATORS)  # the Snakefile's {generator} wildcard
# Keys of a diffusers section that say only how clips are made (the schema's keys from
# `device` on; tests/test_synthesize_registry.py checks they agree).
RUNTIME_KEYS = (
    "device",
    "cpu_offload",
    "vae_tiling",
    "vae_slicing",
    "attention_backend",
    "compile",
    "threads",
    "mem_mb",
    "load_minutes",
    "minutes_per_clip",
)


@dataclass(frozen=True)
class Batch:
    """One Snakemake job that makes several clips with one model load."""

    rule: str
    generator: str
    method: str
    clip_ids: tuple[str, ...]


def method_of(clip_id: str) -> str:
    method = clip_id.split("-", 1)[0]
    if method not in METHODS:
        raise ValueError(f"clip id {clip_id!r} does not start with a method ({', '.join(METHODS)})")
    return method


def generators(config: dict[str, Any]) -> dict[str, str]:
    """Method -> generator name, from synthesize.backend (one name, or one per method;
    validation fills in the schema's default of a method left out)."""
    backend = config["synthesize"]["backend"]
    if isinstance(backend, str):
        return dict.fromkeys(METHODS, backend)
    return {method: backend[method] for method in METHODS}


def generator_of(config: dict[str, Any], clip_id: str) -> str:
    return generators(config)[method_of(clip_id)]


def settings(config: dict[str, Any], generator: str) -> dict[str, Any]:
    """The keys of synthesize.<generator> that decide what a clip is."""
    section = config["synthesize"][generator]
    return {key: value for key, value in section.items() if key not in RUNTIME_KEYS}


def runtime(config: dict[str, Any], generator: str) -> dict[str, Any]:
    """The keys of synthesize.<generator> that decide only how clips are made."""
    section = config["synthesize"][generator]
    return {key: value for key, value in section.items() if key in RUNTIME_KEYS}


def rule_params(config: dict[str, Any], generator: str) -> dict[str, Any]:
    """What a synthesis job's output depends on besides its prompts: its rerun trigger.
    A LoRA counts by its content too (a new file at the same path regenerates the clips;
    Snakemake 9.27 misses input mtimes of jobs behind the refine checkpoint)."""
    chosen = settings(config, generator)
    if chosen.get("lora"):
        chosen["lora"] = [{**lora, "sha256": _lora_digest(lora["path"])} for lora in chosen["lora"]]
    return canonical({"backend": generator, "seed": config["seed"], "settings": chosen})


def settings_digest(params: dict[str, Any]) -> str:
    """A short digest of what a clip is (backend and settings, not the seed): the key under
    which the GPU plan looks up seconds per clip measured in earlier sidecars."""
    import hashlib
    import json

    text = json.dumps(
        {"backend": params["backend"], "settings": params["settings"]}, sort_keys=True
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@functools.cache
def _digest_of(path: str, size: int, mtime_ns: int) -> str:
    from synthvad.prompts import file_sha256

    return file_sha256(path)


def _lora_digest(path: str) -> str:
    """The file's SHA-256, hashed once per Snakemake run and file version."""
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise ConfigError(f"LoRA file {path} cannot be read ({exc.strerror})") from exc
    return _digest_of(path, stat.st_size, stat.st_mtime_ns)


def lora_files(config: dict[str, Any], generator: str) -> list[str]:
    """The generator's LoRA files: inputs of its jobs, so a file replaced at the same path
    regenerates the clips too (its path and scale are rule params already)."""
    if not registry.get(generator).is_diffusers:
        return []
    return [lora["path"] for lora in config["synthesize"][generator].get("lora") or []]


def threads(config: dict[str, Any], generator: str) -> int:
    if not registry.get(generator).is_diffusers:
        return 1
    return config["synthesize"][generator]["threads"]


def resources(config: dict[str, Any], generator: str, n_clips: int) -> dict[str, int]:
    """gpu / mem_mb / runtime (minutes) of a job making `n_clips` clips."""
    spec = registry.get(generator)
    if spec.fixed_resources is not None:
        return dict(spec.fixed_resources)
    section = config["synthesize"][generator]
    minutes = section["load_minutes"] + n_clips * section["minutes_per_clip"]
    return {
        "gpu": 0 if section["device"] == "cpu" else 1,
        "mem_mb": section["mem_mb"],
        "runtime": int(round(minutes)),
    }


def conda_env(generator: str) -> str:
    return registry.get(generator).conda_env


def batches(config: dict[str, Any], clip_ids: Iterable[str]) -> list[Batch]:
    """Clips in groups of about synthesize.clips_per_job, never mixing generators or methods.

    One method per batch keeps a batch's inputs equal to those of its clips' one-clip
    jobs (only PA-VAD clips read the initial images). A batch is a range of ranks
    (synthvad.plan.rank_chunks): raising describe.per_class or retrieve.top_k adds clips
    only to the batches of their ranks or new ones, so other batches keep their clips and
    are not regenerated. Names: synthesize_batch_<method>_<first rank>_<last rank>.
    """
    groups: dict[tuple[str, str], list[str]] = {}
    for clip_id in clip_ids:
        method = method_of(clip_id)
        groups.setdefault((generators(config)[method], method), []).append(clip_id)
    out: list[Batch] = []
    for (generator, method), ids in groups.items():
        for chunk, batch in rank_chunks(ids, config["synthesize"]["clips_per_job"]).items():
            name = f"synthesize_batch_{method}_{chunk.removeprefix('ranks-').replace('-', '_')}"
            out.append(Batch(name, generator, method, batch))
    return out


def check_config(config: dict[str, Any], methods: Iterable[str]) -> None:
    """What the schema cannot say about synthesize; raises ConfigError naming the key."""
    backend_key = "synthesize.backend"
    for method in methods:
        generator = generators(config)[method]
        spec = registry.get(generator)
        if method not in spec.methods:
            usable = [
                n for n, s in registry.GENERATORS.items() if s.is_diffusers and method in s.methods
            ]
            raise ConfigError(
                f"config key '{backend_key}': {generator} animates an initial image, but "
                f"GV-VAD clips (gvvad) are text-to-video and have none; use {' or '.join(usable)} "
                f"for gvvad, e.g. backend: {{gvvad: {usable[0]}, pavad: {generator}}}"
            )
        if spec.diffusers is not None:
            key = f"synthesize.{generator}"
            _check_generator(config["synthesize"][generator], key, generator, spec.diffusers)


def _check_generator(
    section: dict[str, Any], key: str, generator: str, spec: DiffusersSpec
) -> None:
    if not section.get("model"):
        raise ConfigError(
            f"config key '{key}.model': {generator} needs a model: a local diffusers pipeline "
            "folder, or a hub id present in your HF cache"
        )
    frames = section.get("frames")
    if frames is not None and frames % spec.frame_stride != 1:
        raise ConfigError(
            f"config key '{key}.frames': the video VAE makes {spec.frame_stride}k+1 frames "
            f"(e.g. {spec.defaults.frames}), got {frames}"
        )
    guidance = section.get("guidance")
    if isinstance(guidance, list) and not spec.two_expert_capable:
        raise ConfigError(
            f"config key '{key}.guidance': two guidance scales need a two-expert (Wan 2.2 "
            f"A14B) checkpoint; {generator} takes one number"
        )
    if section.get("boundary_ratio") is not None and not spec.two_expert_capable:
        raise ConfigError(f"config key '{key}.boundary_ratio': only Wan 2.2 checkpoints have one")
    for i, lora in enumerate(section.get("lora") or []):
        if not os.path.isfile(lora["path"]):
            raise ConfigError(
                f"config key '{key}.lora[{i}].path': {lora['path']} is not a file (a LoRA "
                ".safetensors, on a file system the synthesis jobs can read)"
            )
        if lora.get("component") == "transformer_2" and not spec.two_expert_capable:
            raise ConfigError(
                f"config key '{key}.lora[{i}].component': transformer_2 is the low-noise expert "
                f"of a Wan 2.2 A14B checkpoint; {generator} has one transformer"
            )
    if section.get("cpu_offload", "none") != "none" and section.get("device") == "cpu":
        raise ConfigError(
            f"config key '{key}.cpu_offload': offloading moves weights between CPU and GPU; "
            "it needs device auto or cuda"
        )

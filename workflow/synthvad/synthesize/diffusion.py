"""The diffusers generator behind the stage-4 interface, shared by every diffusers backend
(CogVideoX, Wan; their facts and defaults are in cogvideox.py and wan.py): device and dtype,
locating and loading the checkpoint, LoRA adapters, scheduler, offload and compile, and
the pipeline call.

A generator loads its pipeline once and then makes any number of clips, each from its own
seeded torch.Generator, so a clip does not depend on the clips made before it in a job.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from synthvad import devices
from synthvad.prompts import file_sha256
from synthvad.synthesize import registry
from synthvad.synthesize.base import Clip, SynthesisError
from synthvad.synthesize.locate import ModelLocation, locate_model
from synthvad.synthesize.spec import DiffusersSpec

log = logging.getLogger(__name__)

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
MEMORY_KEYS = (
    "cpu_offload: model (or sequential: least memory, slowest), vae_tiling: true, vae_slicing: true"
)


def resolve_device(runtime: dict[str, Any], key: str) -> torch.device:
    """The configured device; an error before any loading when it asks for a missing GPU."""
    name = runtime["device"]
    has_cuda = torch.cuda.is_available()
    wants_gpu = name.startswith("cuda") or runtime["cpu_offload"] != "none"
    if wants_gpu and not has_cuda:
        which = (
            f"device: {name}"
            if name.startswith("cuda")
            else f"cpu_offload: {runtime['cpu_offload']}"
        )
        raise SynthesisError(
            f"{key}: {which} needs a CUDA GPU, but torch {torch.__version__} sees none on this "
            "machine (torch.cuda.is_available() is False); run the job on a GPU node, or set "
            f"{key}.device: cpu and cpu_offload: none (very slow for real checkpoints)"
        )
    if name == "auto" and not has_cuda:
        log.warning("%s.device is auto and there is no CUDA GPU: generating on the CPU", key)
    try:
        return devices.resolve_device(name, f"{key}.device")
    except devices.DeviceError as err:
        raise SynthesisError(str(err)) from None


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """auto: bfloat16 on a GPU, float32 on the CPU (bf16 matmuls are slow on most CPUs)."""
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return DTYPES[name]


def check_attention_backend(name: str | None, key: str) -> None:
    if name is None:
        return
    from diffusers.models.attention_dispatch import AttentionBackendName

    known = [b.value for b in AttentionBackendName]
    if name not in known:
        raise SynthesisError(
            f"{key}.attention_backend: unknown backend {name!r} (diffusers knows: {', '.join(known)})"
        )


def out_of_memory(key: str, device: torch.device, doing: str) -> SynthesisError:
    total = ""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        total = f" ({props.name}, {props.total_memory / 2**30:.0f} GiB)"
    return SynthesisError(
        f"CUDA out of memory {doing} on {device}{total}. To use less GPU memory set, under "
        f"{key}: {MEMORY_KEYS}, or a smaller width / height / frames. These keys do not "
        "rerun clips already made."
    )


def load_pipeline(
    spec: DiffusersSpec, location: ModelLocation, dtype: torch.dtype, key: str
) -> Any:
    import diffusers

    pipeline_class = getattr(diffusers, spec.pipeline_class)
    dtypes = {"default": dtype, **dict.fromkeys(spec.float32_components, torch.float32)}
    try:
        return pipeline_class.from_pretrained(location.folder, dtype=dtypes, local_files_only=True)
    except Exception as exc:
        raise SynthesisError(
            f"{key}.model: {location.folder} could not be loaded as a {spec.pipeline_class} "
            f"({type(exc).__name__}: {exc})"
        ) from exc


def _transformers(pipe: Any) -> list[Any]:
    return [t for t in (pipe.transformer, getattr(pipe, "transformer_2", None)) if t is not None]


def _to_uint8(frames: np.ndarray) -> np.ndarray:
    """diffusers' float frames in [0, 1] -> uint8 [T, H, W, 3]."""
    return np.clip(np.rint(np.asarray(frames) * 255.0), 0, 255).astype(np.uint8)


def _peak_gpu_memory(device: torch.device) -> dict[str, int | None]:
    if device.type != "cuda":
        return {"peak_gpu_memory_bytes": None, "peak_gpu_memory_reserved_bytes": None}
    return {
        "peak_gpu_memory_bytes": int(torch.cuda.max_memory_allocated(device)),
        "peak_gpu_memory_reserved_bytes": int(torch.cuda.max_memory_reserved(device)),
    }


class DiffusersGenerator:
    """A loaded pipeline with the config's size, steps and guidance, ready to make clips."""

    def __init__(
        self,
        backend: str,
        settings: dict[str, Any],
        runtime: dict[str, Any],
        pipe: Any,
        device: torch.device,
        location: ModelLocation | None = None,
    ) -> None:
        self.backend = backend
        self.key = f"synthesize.{backend}"
        self.spec = registry.diffusers_spec(backend)
        self.image_to_video = registry.get(backend).image_to_video
        self.settings = settings
        self.pipe = pipe
        self.device = device
        self.location = location
        self.experts = len(_transformers(pipe))
        video = self.spec.video(settings)
        self.width, self.height, self.frames = video.width, video.height, video.frames
        self.fps, self.steps = video.fps, video.steps
        self.guidance = self._guidance()
        self._check_shape()
        if settings.get("boundary_ratio") is not None:
            pipe.register_to_config(boundary_ratio=settings["boundary_ratio"])
        self.scheduler_config = self._set_scheduler()
        self.loras = self._load_loras()  # before offload and compile, which wrap the modules
        self._apply_runtime(runtime)
        self._warned_unused_image = False

    @classmethod
    def load(
        cls, backend: str, settings: dict[str, Any], runtime: dict[str, Any]
    ) -> DiffusersGenerator:
        """Check the device first, then locate and load the configured checkpoint."""
        key = f"synthesize.{backend}"
        spec = registry.diffusers_spec(backend)
        device = resolve_device(runtime, key)
        check_attention_backend(runtime["attention_backend"], key)
        dtype = resolve_dtype(settings["dtype"], device)
        location = locate_model(
            settings["model"],
            settings["revision"],
            settings["allow_download"],
            spec.pipeline_class,
            f"{key}.model",
        )
        started = time.perf_counter()
        pipe = load_pipeline(spec, location, dtype, key)
        log.info(
            "loaded %s from %s (revision %s, %s) in %.1f s",
            location.pipeline_class,
            location.folder,
            location.revision,
            dtype,
            time.perf_counter() - started,
        )
        return cls(backend, settings, runtime, pipe, device, location)

    def _guidance(self) -> tuple[float, ...]:
        """One scale per expert: (guidance_scale,) or (guidance_scale, guidance_scale_2)."""
        value = self.settings["guidance"]
        if value is None:
            if self.experts == 2 and self.spec.guidance_two_experts:
                return self.spec.guidance_two_experts
            return (self.spec.guidance,) * self.experts
        if isinstance(value, int | float):
            return (float(value),) * self.experts
        if self.experts != 2:
            raise SynthesisError(
                f"{self.key}.guidance: two scales {value} need a two-expert (Wan 2.2 A14B) "
                f"checkpoint, but {self._model_name()} has one transformer; give one number"
            )
        return (float(value[0]), float(value[1]))

    def _check_shape(self) -> None:
        """Sizes the pipeline would silently round: an error naming the key instead."""
        patch = _transformers(self.pipe)[0].config.patch_size
        patch = patch[-1] if isinstance(patch, list | tuple) else patch
        multiple = self.pipe.vae_scale_factor_spatial * patch
        for name, value in (("width", self.width), ("height", self.height)):
            if value % multiple:
                raise SynthesisError(
                    f"{self.key}.{name}: {value} is not a multiple of {multiple} "
                    f"(VAE stride x patch size of {self._model_name()})"
                )
        stride = self.pipe.vae_scale_factor_temporal
        if (self.frames - 1) % stride:
            raise SynthesisError(
                f"{self.key}.frames: {self._model_name()} makes {stride}k+1 frames, got {self.frames}"
            )
        if self.settings.get("boundary_ratio") is not None and self.experts != 2:
            raise SynthesisError(
                f"{self.key}.boundary_ratio: {self._model_name()} has one transformer (no experts)"
            )

    def _set_scheduler(self) -> dict[str, Any]:
        """synthesize.<backend>.scheduler / scheduler_config: a distilled model's sampler,
        built from the checkpoint's scheduler config; returns the overrides applied."""
        import inspect

        import diffusers

        name = self.settings.get("scheduler")
        overrides = dict(self.settings.get("scheduler_config") or {})
        if name is None and not overrides:
            return {}
        cls = type(self.pipe.scheduler) if name is None else getattr(diffusers, name, None)
        if not (isinstance(cls, type) and issubclass(cls, diffusers.SchedulerMixin)):
            raise SynthesisError(
                f"{self.key}.scheduler: {name!r} is not a diffusers scheduler class "
                "(e.g. UniPCMultistepScheduler, FlowMatchEulerDiscreteScheduler)"
            )
        known = set(inspect.signature(cls.__init__).parameters) - {"self"}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise SynthesisError(
                f"{self.key}.scheduler_config: {cls.__name__} has no {', '.join(unknown)} "
                f"(it takes {', '.join(sorted(known))})"
            )
        self.pipe.scheduler = cls.from_config(self.pipe.scheduler.config, **overrides)
        log.info("scheduler %s with %s", cls.__name__, overrides or "the checkpoint's config")
        return overrides

    def _load_loras(self) -> list[dict[str, Any]]:
        """synthesize.<backend>.lora: each adapter loaded by diffusers (peft) into its
        transformer and weighted by its scale; returns the sidecar's record of them."""
        from safetensors.torch import load_file

        loaded: list[dict[str, Any]] = []
        active: dict[int, tuple[list[str], list[float]]] = {}
        for i, lora in enumerate(self.settings.get("lora") or []):
            key = f"{self.key}.lora[{i}]"
            expert = 1 if lora.get("component", "transformer") == "transformer" else 2
            if expert > self.experts:
                raise SynthesisError(
                    f"{key}.component: transformer_2 is the low-noise expert of a Wan 2.2 A14B "
                    f"checkpoint, but {self._model_name()} has one transformer"
                )
            path = Path(lora["path"])
            if not path.is_file():
                raise SynthesisError(f"{key}.path: {path} is not a file (a LoRA .safetensors)")
            name = f"lora_{i}"
            try:
                into = {"load_into_transformer_2": True} if expert == 2 else {}
                self.pipe.load_lora_weights(load_file(path), adapter_name=name, **into)
            except Exception as exc:
                raise SynthesisError(
                    f"{key}.path: {path} could not be loaded as a LoRA of "
                    f"{type(self.pipe).__name__} ({type(exc).__name__}: {exc})"
                ) from exc
            names, weights = active.setdefault(expert, ([], []))
            names.append(name)
            weights.append(float(lora.get("scale", 1.0)))
            # The rule params carry the file's digest (jobs.rule_params): hash only for a
            # direct call without one (benchmarks/synthesis.py).
            digest = lora.get("sha256") or file_sha256(path)
            loaded.append(
                {"path": str(path), "sha256": digest, "scale": weights[-1],
                 "component": lora.get("component", "transformer")}
            )  # fmt: skip
        transformers = _transformers(self.pipe)
        for expert, (names, weights) in active.items():
            transformers[expert - 1].set_adapters(names, weights)
        if loaded:
            log.info("LoRA adapters: %s", ", ".join(f"{x['path']} x{x['scale']:g}" for x in loaded))
        return loaded

    def _apply_runtime(self, runtime: dict[str, Any]) -> None:
        if runtime["attention_backend"]:
            for transformer in _transformers(self.pipe):
                try:
                    transformer.set_attention_backend(runtime["attention_backend"])
                except Exception as exc:
                    raise SynthesisError(
                        f"{self.key}.attention_backend: {runtime['attention_backend']!r} cannot "
                        f"be used here ({type(exc).__name__}: {exc})"
                    ) from exc
        if runtime["vae_tiling"]:
            self.pipe.vae.enable_tiling()
        if runtime["vae_slicing"]:
            self.pipe.vae.enable_slicing()
        try:
            if runtime["cpu_offload"] == "model":
                self.pipe.enable_model_cpu_offload(device=self.device)
            elif runtime["cpu_offload"] == "sequential":
                self.pipe.enable_sequential_cpu_offload(device=self.device)
            else:
                self.pipe.to(self.device)
        except torch.OutOfMemoryError as exc:
            raise out_of_memory(self.key, self.device, "moving the model to the GPU") from exc
        if runtime["compile"]:
            for transformer in _transformers(self.pipe):
                if getattr(transformer, "_repeated_blocks", None):
                    transformer.compile_repeated_blocks(fullgraph=True)  # regional: fast warm-up
                else:
                    transformer.compile()

    def _model_name(self) -> str:
        return str(self.location.folder) if self.location else self.settings.get("model") or "?"

    def _init_image(self, prompt: dict[str, Any], clip_id: str) -> Image.Image | None:
        path = prompt.get("init_image")
        if not self.image_to_video:
            if path and not self._warned_unused_image:
                log.warning(
                    "%s is text-to-video: the initial images of PA-VAD clips (e.g. %s) are not used",
                    self.backend,
                    clip_id,
                )
                self._warned_unused_image = True
            return None
        if not path:
            raise SynthesisError(
                f"clip {clip_id}: {self.backend} animates an initial image, but its prompt "
                "(results/<name>/prompts/<clip_id>.json) has no init_image"
            )
        with Image.open(path) as image:
            # Crop to the clip's aspect ratio before the pipeline resizes: no stretching.
            return ImageOps.fit(
                image.convert("RGB"), (self.width, self.height), Image.Resampling.BICUBIC
            )

    def describe(self) -> dict[str, Any]:
        """Sidecar fields that are the same for every clip of this generator."""
        import diffusers

        location = self.location
        return {
            "backend": self.backend,
            "model": self.settings.get("model"),
            "model_path": str(location.folder) if location else None,
            "revision": location.revision if location else None,
            "pipeline": type(self.pipe).__name__,
            "experts": self.experts,
            "boundary_ratio": getattr(self.pipe.config, "boundary_ratio", None),
            "steps": self.steps,
            "guidance": list(self.guidance),
            "scheduler": type(self.pipe.scheduler).__name__,
            "scheduler_config": self.scheduler_config,
            "lora": self.loras,
            "dtype": str(_transformers(self.pipe)[0].dtype).removeprefix("torch."),
            "device": str(self.device),
            "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__},
        }

    def generate(self, prompt: dict[str, Any], seed: int, clip_id: str) -> Clip:
        negative = self.settings["negative_prompt"] or prompt.get("negative_prompt")
        image = self._init_image(prompt, clip_id)
        kwargs: dict[str, Any] = {
            "prompt": prompt["prompt"],
            "negative_prompt": negative,
            "width": self.width,
            "height": self.height,
            "num_frames": self.frames,
            "num_inference_steps": self.steps,
            "guidance_scale": self.guidance[0],
            # On the CPU whatever the device: the same noise on every machine.
            "generator": torch.Generator("cpu").manual_seed(seed),
            "output_type": "np",
        }
        if self.experts == 2:
            kwargs["guidance_scale_2"] = self.guidance[1]
        if image is not None:
            kwargs["image"] = image
        kwargs.update(self.spec.call_arguments(self.pipe))
        self.pipe.set_progress_bar_config(desc=f"{clip_id} denoising", file=sys.stderr)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        try:
            with torch.inference_mode():
                frames = self.pipe(**kwargs).frames[0]
        except torch.OutOfMemoryError as exc:
            raise out_of_memory(self.key, self.device, f"generating clip {clip_id}") from exc
        meta = {
            **self.describe(),
            "negative_prompt": negative,
            "init_image": prompt.get("init_image") if image is not None else None,
            **_peak_gpu_memory(self.device),
        }
        return Clip(frames=_to_uint8(frames), fps=float(self.fps), meta=meta)

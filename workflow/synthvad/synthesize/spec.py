"""The shape of a generator's registry entry: what it is conditioned on, what runs it and,
for a diffusers pipeline, the defaults that config keys left null take.

Plain data without torch, because the Snakefile reads it at parse time. The entries
themselves live with their generators (perturb.py, cogvideox.py, wan.py) and are
gathered in registry.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

METHODS = ("gvvad", "pavad")
IMAGE_METHODS = ("pavad",)  # methods whose prompts carry an initial image (PA-VAD)

# Conda environments of the synthesis jobs, relative to workflow/rules/.
CORE_ENV = "../../envs/core.yaml"
DIFFUSION_ENV = "../../envs/diffusion.yaml"


@dataclass(frozen=True)
class VideoSettings:
    """Size, length and steps of a clip: the config's keys, the spec's defaults where null."""

    width: int
    height: int
    frames: int
    fps: float
    steps: int


@dataclass(frozen=True)
class Reference:
    """A published seconds-per-clip figure and the settings it was measured at: the GPU
    plan's estimate before any clip is measured (docs/generators.md#gpu-hour-plan)."""

    seconds: float
    settings: VideoSettings
    source: str


def no_extra_arguments(pipe: Any) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class DiffusersSpec:
    """A diffusers pipeline class and its defaults for config keys left null."""

    pipeline_class: str
    defaults: VideoSettings
    guidance: float  # one transformer
    reference: Reference  # the GPU plan's seconds per clip when none are measured yet
    # (high-noise, low-noise) expert of a two-expert (Wan 2.2 A14B) checkpoint; None: the
    # family has no such checkpoints, so transformer_2 and boundary_ratio are config errors.
    guidance_two_experts: tuple[float, float] | None = None
    float32_components: tuple[str, ...] = ()  # kept in float32 whatever synthesize.<name>.dtype
    frame_stride: int = 4  # the video VAE's temporal stride: a clip has stride * k + 1 frames
    # Family-specific arguments of the pipeline call, from the loaded pipeline.
    call_arguments: Callable[[Any], dict[str, Any]] = no_extra_arguments
    plan_note: str | None = None  # a hint the GPU plan prints under this generator's figures

    @property
    def two_expert_capable(self) -> bool:
        return self.guidance_two_experts is not None

    def video(self, section: Mapping[str, Any]) -> VideoSettings:
        """The clip's size, length and steps from synthesize.<name> (settings or the section)."""
        return VideoSettings(
            width=section["width"] or self.defaults.width,
            height=section["height"] or self.defaults.height,
            frames=section["frames"] or self.defaults.frames,
            fps=section["fps"] or self.defaults.fps,
            steps=section["steps"] or self.defaults.steps,
        )


@dataclass(frozen=True)
class GeneratorSpec:
    """One value of synthesize.backend; its config section (synthesize.<name>) and its
    clips' folder (synthetic/<name>/) carry the same name."""

    name: str
    image_to_video: bool  # animates a PA-VAD initial image; GV-VAD prompts have none
    conda_env: str
    diffusers: DiffusersSpec | None = None  # None: not a diffusers pipeline
    # gpu / mem_mb / runtime of a job, for a generator whose section has no keys for them.
    fixed_resources: Mapping[str, int] | None = None

    @property
    def is_diffusers(self) -> bool:
        return self.diffusers is not None

    @property
    def methods(self) -> tuple[str, ...]:
        """The methods whose clips it can make."""
        return IMAGE_METHODS if self.image_to_video else METHODS

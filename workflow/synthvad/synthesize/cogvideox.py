"""CogVideoX text-to-video (GV-VAD's generator): its registry entry and what its pipeline
call needs beyond the shared diffusers generator (synthvad.synthesize.diffusion)."""

from __future__ import annotations

from typing import Any

from synthvad.synthesize.spec import (
    DIFFUSION_ENV,
    DiffusersSpec,
    GeneratorSpec,
    Reference,
    VideoSettings,
)

# CogVideoX-5b's published settings; GV-VAD gives no generation settings.
PUBLISHED_VIDEO = VideoSettings(width=720, height=480, frames=49, fps=8.0, steps=50)


def call_arguments(pipe: Any) -> dict[str, Any]:
    # The prompt's token budget is the transformer's: the pipeline's default (226 tokens)
    # fits only checkpoints built for that text length.
    return {"max_sequence_length": pipe.transformer.config.max_text_seq_length}


COGVIDEOX = GeneratorSpec(
    name="cogvideox",
    image_to_video=False,
    conda_env=DIFFUSION_ENV,
    diffusers=DiffusersSpec(
        pipeline_class="CogVideoXPipeline",
        defaults=PUBLISHED_VIDEO,
        guidance=6.0,
        reference=Reference(
            seconds=90, settings=PUBLISHED_VIDEO, source="CogVideoX-5b model card, H100"
        ),
        call_arguments=call_arguments,
    ),
)

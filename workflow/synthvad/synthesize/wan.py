"""Wan 2.1 / 2.2 (PA-VAD's generator): the registry entries of its image-to-video and
text-to-video pipelines. Both run on the shared diffusers generator
(synthvad.synthesize.diffusion) with no family-specific call arguments; the second expert
(transformer_2) of a Wan 2.2 A14B checkpoint is handled there."""

from __future__ import annotations

from dataclasses import replace

from synthvad.synthesize.spec import (
    DIFFUSION_ENV,
    DiffusersSpec,
    GeneratorSpec,
    Reference,
    VideoSettings,
)

# PA-VAD supplementary S1.3: Wan 2.2 I2V-A14B, 832x480, 81 frames at 16 fps, 25 steps,
# about 9 min 35 s per clip on an RTX 6000 Ada.
PAVAD_VIDEO = VideoSettings(width=832, height=480, frames=81, fps=16.0, steps=25)
PAVAD_REFERENCE = Reference(
    seconds=9 * 60 + 35, settings=PAVAD_VIDEO, source="PA-VAD: Wan 2.2 I2V-A14B, RTX 6000 Ada"
)
# A community report for a 4-step distilled Wan 2.2 LoRA (480p, 81 frames, RTX 5070 Ti).
DISTILLED_SECONDS = 84
DISTILLED_NOTE = (
    f"a 4-step distilled Wan 2.2 LoRA makes a 480p 81-frame clip in about "
    f"{DISTILLED_SECONDS} s on an RTX 5070 Ti: synthesize.<wan>.lora + steps: 4"
)

WAN_I2V = GeneratorSpec(
    name="wan_i2v",
    image_to_video=True,
    conda_env=DIFFUSION_ENV,
    diffusers=DiffusersSpec(
        pipeline_class="WanImageToVideoPipeline",
        defaults=PAVAD_VIDEO,
        guidance=5.0,
        guidance_two_experts=(3.5, 3.5),  # PA-VAD's on ShanghaiTech
        float32_components=("vae", "image_encoder"),  # the Wan VAE and CLIP are fragile in bf16
        reference=PAVAD_REFERENCE,
        plan_note=DISTILLED_NOTE,
    ),
)

WAN_T2V = GeneratorSpec(
    name="wan_t2v",
    image_to_video=False,
    conda_env=DIFFUSION_ENV,
    diffusers=DiffusersSpec(
        pipeline_class="WanPipeline",
        defaults=PAVAD_VIDEO,  # as the image-to-video pipeline
        guidance=5.0,
        guidance_two_experts=(4.0, 3.0),  # Wan 2.2 T2V A14B's published guidance
        float32_components=("vae",),  # the Wan VAE is fragile in bf16
        reference=replace(
            PAVAD_REFERENCE, source="PA-VAD's Wan 2.2 I2V-A14B figure (none for T2V)"
        ),
        plan_note=DISTILLED_NOTE,
    ),
)

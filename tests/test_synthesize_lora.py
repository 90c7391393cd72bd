"""LoRA adapters and distilled schedulers of the diffusers generators, on tiny pipelines
with tiny LoRAs built here (random weights, saved as diffusers saves a trained LoRA)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from synthvad.io.video import read_frames
from synthvad.synthesize.base import SynthesisError
from synthvad.synthesize.diffusion import DiffusersGenerator

from .random_pipelines import build
from .test_synthesize_diffusers import KINDS, digest, generator_section, synthesize

TEXT_CLIP = "gvvad-fighting-000-abnormal"
IMAGE_CLIP = "pavad-explosion-000"


def tiny_lora(kind: str, path: Path, component: str = "transformer", seed: int = 1) -> Path:
    """A rank-2 LoRA on the attention projections of the tiny `kind` pipeline's
    `component`, random A and B (peft's init_lora_weights=False), written by the
    pipeline class's own save_lora_weights as one .safetensors file."""
    import torch
    from peft import LoraConfig, get_peft_model_state_dict

    pipe = build(KINDS[kind][0], seed=0)
    transformer = getattr(pipe, component)
    torch.manual_seed(seed)  # after build, which seeds for the pipeline's own weights
    config = LoraConfig(r=2, lora_alpha=2, init_lora_weights=False,
                        target_modules=["to_q", "to_k", "to_v"])  # fmt: skip
    transformer.add_adapter(config, adapter_name="made")
    layers = get_peft_model_state_dict(transformer, adapter_name="made")
    path.mkdir(parents=True, exist_ok=True)
    type(pipe).save_lora_weights(path, transformer_lora_layers=layers)
    return path / "pytorch_lora_weights.safetensors"


@pytest.mark.parametrize(("kind", "clip"), [("cogvideox", TEXT_CLIP), ("wan2.2-i2v", IMAGE_CLIP)])
def test_lora_changes_the_clip_scale_zero_does_not(kind, clip, checkpoints, prompts, tmp_path):
    backend = KINDS[kind][1]
    lora = tiny_lora(kind, tmp_path / "lora")
    base = generator_section(checkpoints[kind])
    synthesize(backend, base, prompts, tmp_path / "base", [clip])
    with_lora = {**base, "lora": [{"path": str(lora), "scale": 1.0, "component": "transformer"}]}
    meta = synthesize(backend, with_lora, prompts, tmp_path / "lora1", [clip])[clip]
    off = {**base, "lora": [{"path": str(lora), "scale": 0.0, "component": "transformer"}]}
    synthesize(backend, off, prompts, tmp_path / "lora0", [clip])

    made = {name: tmp_path / name / f"{clip}.mp4" for name in ("base", "lora1", "lora0")}
    assert not np.array_equal(read_frames(made["base"]), read_frames(made["lora1"]))
    assert digest(made["base"]) == digest(made["lora0"])  # scale 0: the clip without LoRA
    assert meta["lora"] == [
        {"path": str(lora), "sha256": digest(lora), "scale": 1.0, "component": "transformer"}
    ]


def test_two_part_lora_reaches_the_low_noise_expert(checkpoints, prompts, tmp_path):
    lora = tiny_lora("wan2.2-i2v", tmp_path / "low", component="transformer_2")
    base = generator_section(checkpoints["wan2.2-i2v"])
    synthesize("wan_i2v", base, prompts, tmp_path / "base", [IMAGE_CLIP])
    low = {**base, "lora": [{"path": str(lora), "scale": 1.0, "component": "transformer_2"}]}
    meta = synthesize("wan_i2v", low, prompts, tmp_path / "low2", [IMAGE_CLIP])[IMAGE_CLIP]
    first, second = (tmp_path / d / f"{IMAGE_CLIP}.mp4" for d in ("base", "low2"))
    assert not np.array_equal(read_frames(first), read_frames(second))
    assert meta["lora"][0]["component"] == "transformer_2"

    one_expert = {**generator_section(checkpoints["wan2.1-i2v"]), "lora": low["lora"]}
    with pytest.raises(SynthesisError, match=r"lora\[0\]\.component: transformer_2 .* one"):
        synthesize("wan_i2v", one_expert, prompts, tmp_path / "x", [IMAGE_CLIP])


def test_bad_lora_files_are_named(checkpoints, prompts, tmp_path):
    from synthvad.config import ConfigError
    from synthvad.synthesize import jobs

    from .test_synthesize_diffusers import minimal_config

    base = generator_section(checkpoints["cogvideox"])
    missing = {**base, "lora": [{"path": str(tmp_path / "none.safetensors"), "scale": 1.0}]}
    config = minimal_config(backend={"gvvad": "cogvideox"}, cogvideox=missing)
    with pytest.raises(ConfigError, match=r"synthesize.cogvideox.lora\[0\].path': .* not a file"):
        jobs.check_config(config, ["gvvad"])  # at start-up, before any job
    with pytest.raises(SynthesisError, match=r"synthesize.cogvideox.lora\[0\].path: .* not a file"):
        DiffusersGenerator.load("cogvideox", missing, jobs.runtime(config, "cogvideox"))
    (tmp_path / "x.safetensors").write_bytes(b"")
    wan21 = {
        **base,
        "lora": [{"path": str(tmp_path / "x.safetensors"), "component": "transformer_2"}],
    }
    with pytest.raises(ConfigError, match=r"lora\[0\].component': transformer_2 .* one"):
        jobs.check_config(
            minimal_config(backend={"gvvad": "cogvideox"}, cogvideox=wan21), ["gvvad"]
        )

    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file" * 10)
    bad = {**base, "lora": [{"path": str(garbage), "scale": 1.0}]}
    with pytest.raises(SynthesisError, match=r"lora\[0\].path: .* could not be loaded"):
        synthesize("cogvideox", bad, prompts, tmp_path / "b", [TEXT_CLIP])
    assert not (tmp_path / "b" / f"{TEXT_CLIP}.mp4").exists()  # nothing written


def test_scheduler_is_replaced_and_checked(checkpoints, prompts, tmp_path):
    base = generator_section(checkpoints["cogvideox"])
    synthesize("cogvideox", base, prompts, tmp_path / "base", [TEXT_CLIP])
    other = {
        **base,
        "scheduler": "CogVideoXDPMScheduler",
        "scheduler_config": {"snr_shift_scale": 1.5},
    }
    meta = synthesize("cogvideox", other, prompts, tmp_path / "dpm", [TEXT_CLIP])[TEXT_CLIP]
    assert meta["scheduler"] == "CogVideoXDPMScheduler" and meta["scheduler_config"] == {
        "snr_shift_scale": 1.5
    }
    first, second = (tmp_path / d / f"{TEXT_CLIP}.mp4" for d in ("base", "dpm"))
    assert not np.array_equal(read_frames(first), read_frames(second))
    with pytest.raises(SynthesisError, match="scheduler: 'NoSuchScheduler' is not a diffusers"):
        synthesize("cogvideox", {**base, "scheduler": "NoSuchScheduler"}, prompts, tmp_path / "c",
                   [TEXT_CLIP])  # fmt: skip
    with pytest.raises(SynthesisError, match="scheduler_config: .* has no bogus"):
        synthesize("cogvideox", {**base, "scheduler_config": {"bogus": 1}}, prompts,
                   tmp_path / "d", [TEXT_CLIP])  # fmt: skip

"""Random-weight diffusers pipelines built from architecture configs, with no download.

Two uses: the tests save tiny ones and point stage 4 at them exactly as a user points it
at a real checkpoint; the synthesis benchmark (benchmarks/synthesis.py) times the
published architectures at their real size when no weights can be had. Random weights make
noise, never meaningful video. Test support, not part of the synthvad package.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

WORDS = (
    "a an the person people man woman car street plaza corridor camera fixed surveillance "
    "cctv fight fighting explosion running falling throwing walks walking generate behavior "
    "manifested as in scene of natural movement and with from to at on"
).split()


def tokenizer(vocab_size: int | None = None) -> Any:
    """A T5 tokenizer built from a word list (no vocab file), padded to `vocab_size`."""
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [(f"▁{w}", -float(i + 1)) for i, w in enumerate(WORDS)]
    pieces += [(c, -100.0) for c in "abcdefghijklmnopqrstuvwxyz0123456789,.-'"]
    if vocab_size is not None:
        pieces += [(f"▁w{i}", -1000.0) for i in range(vocab_size - len(pieces))]
    return T5Tokenizer(vocab=pieces, extra_ids=0)


def _text_stack(encoder_class: str, text: dict[str, Any]) -> tuple[Any, Any]:
    """The word-list tokenizer and a random T5-family `encoder_class` sized to its vocabulary
    (`text`: the encoder's config, its vocab_size the tokenizer's padded size)."""
    import transformers

    tok = tokenizer(text["vocab_size"])
    config_cls = getattr(transformers, encoder_class.replace("EncoderModel", "Config"))
    config = {k: v for k, v in text.items() if k != "vocab_size"}
    return tok, getattr(transformers, encoder_class)(config_cls(vocab_size=len(tok), **config))


# Architectures: component name -> kwargs. The real ones are the published configs of the
# diffusers checkpoints (Wan-AI/Wan2.2-I2V-A14B-Diffusers, Wan-AI/Wan2.1-I2V-14B-480P-Diffusers,
# THUDM/CogVideoX-5b); the tiny ones keep their structure at a size a CPU runs in seconds.
_WAN_14B = {
    "patch_size": (1, 2, 2),
    "num_attention_heads": 40,
    "attention_head_dim": 128,
    "out_channels": 16,
    "text_dim": 4096,
    "freq_dim": 256,
    "ffn_dim": 13824,
    "num_layers": 40,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "eps": 1e-6,
    "rope_max_seq_len": 1024,
}
_UMT5_XXL = {
    "vocab_size": 256384,
    "d_model": 4096,
    "d_kv": 64,
    "d_ff": 10240,
    "num_layers": 24,
    "num_heads": 64,
    "feed_forward_proj": "gated-gelu",
}
_TINY_WAN = {
    "patch_size": (1, 2, 2),
    "num_attention_heads": 2,
    "attention_head_dim": 8,
    "out_channels": 16,
    "text_dim": 32,
    "freq_dim": 16,
    "ffn_dim": 32,
    "num_layers": 2,
    "rope_max_seq_len": 32,
}
_TINY_T5 = {
    "vocab_size": None,
    "d_model": 32,
    "d_kv": 8,
    "d_ff": 64,
    "num_layers": 2,
    "num_heads": 4,
}
_TINY_WAN_VAE = {"base_dim": 3, "z_dim": 16, "dim_mult": [1, 1, 1, 1], "num_res_blocks": 1}
_TINY_CLIP = {
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "image_size": 32,
    "patch_size": 8,
    "projection_dim": 16,
}
_CLIP_VIT_H = {
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "num_hidden_layers": 32,
    "num_attention_heads": 16,
    "image_size": 224,
    "patch_size": 14,
    "projection_dim": 1024,
    "hidden_act": "gelu",
}


def _wan(
    kind: str,
    transformer: dict[str, Any],
    text: dict[str, Any],
    vae: dict[str, Any],
    experts: int,
    image_encoder: dict[str, Any] | None = None,
    flow_shift: float = 5.0,
) -> Any:
    from diffusers import (
        AutoencoderKLWan,
        UniPCMultistepScheduler,
        WanImageToVideoPipeline,
        WanPipeline,
        WanTransformer3DModel,
    )

    tok, encoder = _text_stack("UMT5EncoderModel", text)
    in_channels = 36 if kind == "i2v" else 16  # I2V: noise + first-frame latents + mask
    extra = {}
    if image_encoder is not None:  # Wan 2.1 I2V: CLIP image tokens into cross-attention
        extra = {
            "image_dim": image_encoder["hidden_size"],
            "added_kv_proj_dim": transformer["num_attention_heads"]
            * transformer["attention_head_dim"],
        }
    experts_models = [
        WanTransformer3DModel(in_channels=in_channels, **transformer, **extra)
        for _ in range(experts)
    ]
    components: dict[str, Any] = {
        "tokenizer": tok,
        "text_encoder": encoder,
        "vae": AutoencoderKLWan(**vae),
        "scheduler": UniPCMultistepScheduler(
            prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=flow_shift
        ),
        "transformer": experts_models[0],
        "transformer_2": experts_models[1] if experts == 2 else None,
        "boundary_ratio": 0.9 if experts == 2 else None,
    }
    if kind == "t2v":
        return WanPipeline(**components)
    if image_encoder is not None:
        from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

        size = image_encoder["image_size"]
        components["image_encoder"] = CLIPVisionModel(CLIPVisionConfig(**image_encoder))
        components["image_processor"] = CLIPImageProcessor(
            size={"shortest_edge": size}, crop_size={"height": size, "width": size}
        )
    return WanImageToVideoPipeline(**components)


def _cogvideox(transformer: dict[str, Any], text: dict[str, Any], vae: dict[str, Any]) -> Any:
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXDDIMScheduler,
        CogVideoXPipeline,
        CogVideoXTransformer3DModel,
    )

    tok, encoder = _text_stack("T5EncoderModel", text)
    return CogVideoXPipeline(
        tokenizer=tok,
        text_encoder=encoder,
        vae=AutoencoderKLCogVideoX(**vae),
        transformer=CogVideoXTransformer3DModel(**transformer),
        scheduler=CogVideoXDDIMScheduler(
            prediction_type="v_prediction", rescale_betas_zero_snr=True, timestep_spacing="trailing"
        ),
    )


_TINY_COG = {
    "num_attention_heads": 4,
    "attention_head_dim": 8,
    "in_channels": 4,
    "out_channels": 4,
    "time_embed_dim": 16,
    "text_embed_dim": 32,
    "num_layers": 1,
    "sample_width": 8,
    "sample_height": 8,
    "sample_frames": 9,
    "patch_size": 2,
    "max_text_seq_length": 16,
}
_TINY_COG_VAE = {
    "block_out_channels": (8, 8, 8, 8),
    "latent_channels": 4,
    "layers_per_block": 1,
    "norm_num_groups": 2,
}
_COG_5B = {
    "num_attention_heads": 48,
    "attention_head_dim": 64,
    "in_channels": 16,
    "out_channels": 16,
    "time_embed_dim": 512,
    "text_embed_dim": 4096,
    "num_layers": 42,
    "sample_width": 90,
    "sample_height": 60,
    "sample_frames": 49,
    "patch_size": 2,
    "max_text_seq_length": 226,
    "use_rotary_positional_embeddings": True,
}
_T5_XXL = {**_UMT5_XXL, "vocab_size": 32128}

# name -> (backend it serves, builder)
ARCHITECTURES: dict[str, tuple[str, Callable[[], Any]]] = {
    "tiny-cogvideox": ("cogvideox", lambda: _cogvideox(_TINY_COG, _TINY_T5, _TINY_COG_VAE)),
    "tiny-wan2.1-i2v": (
        "wan_i2v",
        lambda: _wan("i2v", _TINY_WAN, _TINY_T5, _TINY_WAN_VAE, 1, image_encoder=_TINY_CLIP),
    ),
    "tiny-wan2.2-i2v": ("wan_i2v", lambda: _wan("i2v", _TINY_WAN, _TINY_T5, _TINY_WAN_VAE, 2)),
    "tiny-wan-t2v": ("wan_t2v", lambda: _wan("t2v", _TINY_WAN, _TINY_T5, _TINY_WAN_VAE, 1)),
    "cogvideox-5b": ("cogvideox", lambda: _cogvideox(_COG_5B, _T5_XXL, {"scaling_factor": 0.7})),
    "wan2.1-i2v-14b-480p": (
        "wan_i2v",
        lambda: _wan("i2v", _WAN_14B, _UMT5_XXL, {}, 1, image_encoder=_CLIP_VIT_H, flow_shift=3.0),
    ),
    "wan2.2-i2v-a14b": ("wan_i2v", lambda: _wan("i2v", _WAN_14B, _UMT5_XXL, {}, 2)),
}


def build(name: str, seed: int = 0, dtype: torch.dtype = torch.float32) -> Any:
    """A random-weight pipeline of architecture `name` (see ARCHITECTURES), weights in `dtype`."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r} (known: {', '.join(ARCHITECTURES)})")
    torch.manual_seed(seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # built directly in bf16: a 14B model fits host memory once
    try:
        return ARCHITECTURES[name][1]()
    finally:
        torch.set_default_dtype(previous)

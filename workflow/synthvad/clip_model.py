"""The CLIP loader: the `clip` config section -> an open_clip model, tokenizer and
preprocessing constants (generators and LLM/VLM backends load in their own packages)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synthvad.devices import resolve_device

log = logging.getLogger(__name__)

RANDOM_WEIGHTS_WARNING = (
    "CLIP weights are RANDOM (clip.pretrained is null): what CLIP computes (retrieval, the "
    "filter's text-clip score, features with features.extractor: clip) carries no semantics; "
    "set clip.pretrained to a checkpoint for a real run"
)


class ModelConfigError(RuntimeError):
    """A model that cannot be loaded as configured; the message names the config key."""


@dataclass
class ClipBundle:
    model: Any
    tokenizer: Any
    device: torch.device
    image_size: int
    mean: torch.Tensor  # [1, 3, 1, 1]
    std: torch.Tensor
    random_weights: bool
    name: str

    @torch.inference_mode()
    def encode_frames(self, frames: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """Unit-norm image embeddings of uint8 RGB frames [N, H, W, 3] -> float32 [N, D]."""
        out = []
        for i in range(0, len(frames), batch_size):
            batch = self.preprocess(frames[i : i + batch_size])
            emb = self.model.encode_image(batch).float()
            out.append(torch.nn.functional.normalize(emb, dim=-1).cpu())
        return torch.cat(out).numpy()

    def preprocess(self, frames: np.ndarray) -> torch.Tensor:
        """CLIP's own recipe, as stage 6 applies it: shortest side to size (antialiased
        bicubic, uint8), centre crop, normalise on the model's device."""
        from synthvad.features.transforms import crops_uint8, normalize

        crops = crops_uint8(frames, "center", self.image_size)[:, 0]
        return normalize(crops.to(self.device, non_blocking=True), self.mean, self.std)

    @torch.inference_mode()
    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """Unit-norm text embeddings -> float32 [N, D]."""
        tokens = self.tokenizer(texts).to(self.device)
        emb = self.model.encode_text(tokens).float()
        return torch.nn.functional.normalize(emb, dim=-1).cpu().numpy()


def weights_tag(weights: str | None) -> str:
    """A path-safe name of a weights setting: a file's stem, a tag as it is, or random."""
    weights = weights or "random"
    weights = (
        Path(weights).stem if os.sep in weights or weights.endswith((".pt", ".pth")) else weights
    )
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in weights)


def clip_tag(cfg: dict[str, Any]) -> str:
    """A short, path-safe name of the configured extractor, e.g. clip-ViT-B-32-random."""
    return f"clip-{cfg['model']}-{weights_tag(cfg.get('pretrained'))}"


def load_clip(cfg: dict[str, Any], seed: int = 0) -> ClipBundle:
    """Build the configured open_clip model; `seed` fixes random weights across stages."""
    import open_clip

    name, pretrained = cfg["model"], cfg.get("pretrained")
    if name not in open_clip.list_models():
        raise ModelConfigError(f"clip.model: unknown open_clip architecture {name!r}")
    device = resolve_device(cfg.get("device", "auto"), "clip.device")
    if pretrained is not None:
        _check_pretrained(name, pretrained)
    torch.manual_seed(seed)  # the same random weights in retrieve, filter and features
    # Offline by contract: a tag must already be in the local cache, never downloaded here.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        model, _, _ = open_clip.create_model_and_transforms(name, pretrained=pretrained)
    except Exception as exc:
        raise ModelConfigError(
            f"clip.pretrained={pretrained!r} could not be loaded for {name} ({exc}); set "
            "clip.pretrained to a local checkpoint file or a tag present in your HF cache"
        ) from exc
    model = model.to(device).eval()
    if pretrained is None:
        log.warning(RANDOM_WEIGHTS_WARNING)
    pcfg = model.visual.preprocess_cfg
    size = pcfg["size"]
    return ClipBundle(
        model=model,
        tokenizer=open_clip.get_tokenizer(name),
        device=device,
        image_size=int(size[0] if isinstance(size, tuple | list) else size),
        mean=torch.tensor(pcfg["mean"], device=device).view(1, 3, 1, 1),
        std=torch.tensor(pcfg["std"], device=device).view(1, 3, 1, 1),
        random_weights=pretrained is None,
        name=clip_tag(cfg),
    )


def _check_pretrained(name: str, pretrained: str) -> None:
    import open_clip

    looks_like_path = os.sep in pretrained or pretrained.endswith((".pt", ".bin", ".safetensors"))
    if looks_like_path:
        if not Path(pretrained).is_file():
            raise ModelConfigError(f"clip.pretrained: checkpoint file {pretrained!r} not found")
        return
    tags = open_clip.list_pretrained_tags_by_model(name)
    if pretrained not in tags:
        raise ModelConfigError(
            f"clip.pretrained: {pretrained!r} is neither a file nor a pretrained tag of {name} "
            f"(known tags: {', '.join(tags) or 'none'})"
        )

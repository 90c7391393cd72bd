"""Frames -> model inputs. Resizing and cropping stay in uint8 (done by the decoding
workers; a quarter of float32's bytes through shared and pinned memory and over PCIe, and
torchvision's uint8 antialiased bicubic matches PIL's, the reference, to one grey level);
the float conversion and normalisation run on the model's device.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision.transforms.v2 import functional as tvf

CROPS = {"center": 1, "ten": 10}
BICUBIC = tvf.InterpolationMode.BICUBIC


def ten_crop_side(image_size: int, resize: int | None) -> int:
    """Side of the square resized frame the ten crops come from: 256 for 224 (RTFM)."""
    return resize if resize is not None else round(image_size * 256 / 224)


def crops_uint8(
    frames: np.ndarray, mode: str, image_size: int, resize: int | None = None
) -> torch.Tensor:
    """uint8 RGB frames [N, H, W, 3] -> uint8 crops [N, K, 3, S, S].

    center (K=1): CLIP's own recipe, shortest side to S, centre crop. ten (K=10): the whole
    frame resized to a square, then torchvision's ten crops (four corners, centre, and the
    same five of the mirrored frame; crop index = position in that order).
    """
    if mode not in CROPS:
        raise ValueError(f"features.crops: {mode!r} is not one of {', '.join(CROPS)}")
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    size = [image_size, image_size]
    if mode == "center":
        x = tvf.resize(x, [image_size], interpolation=BICUBIC, antialias=True)
        return tvf.center_crop(x, size).unsqueeze(1)
    side = ten_crop_side(image_size, resize)
    if side < image_size:
        raise ValueError(f"features.ten_crop_resize {side} is smaller than the crop {image_size}")
    x = tvf.resize(x, [side, side], interpolation=BICUBIC, antialias=True)
    return torch.stack(tvf.ten_crop(x, size), dim=1)


def normalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 [B, 3, S, S] -> float32 model input, (x / 255 - mean) / std."""
    return (images.float().div_(255.0) - mean) / std

"""The one place a configured device name ("auto", "cpu", "cuda", "cuda:1") becomes a
torch.device, with an error that names the config key when the GPU is not there."""

from __future__ import annotations

import os

import torch


class DeviceError(ValueError):
    """A configured device this machine does not have; the message names the config key."""


def resolve_device(name: str, key: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type != "cuda":
        return device
    if not torch.cuda.is_available():
        raise DeviceError(
            f"{key} is {name!r} but torch {torch.__version__} sees no CUDA GPU on this machine"
        )
    if (device.index or 0) >= torch.cuda.device_count():
        raise DeviceError(
            f"{key} is {name!r}, which does not exist: this machine has "
            f"{torch.cuda.device_count()} CUDA device(s)"
        )
    # cuBLAS is only deterministic with a fixed workspace; set before CUDA starts.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return device

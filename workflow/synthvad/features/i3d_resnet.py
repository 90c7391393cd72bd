"""I3D-ResNet50 (Kinetics-400), the RGB network behind RTFM's 2048-D 10-crop features.

The public RTFM UCF-Crime / ShanghaiTech features are the `i3_res50` network of
github.com/Tushar-N/pytorch-resnet3d (models/resnet.py: the Caffe2 video-nonlocal-net
`i3d_baseline_32x2_IN_pretrain_400k` blobs renamed by utils/convert_weights.py into
`i3d_r50_kinetics.pth`), run by github.com/GowthamGottimukkala/I3D_Feature_Extraction_resnet
(main.py, extract_features.py, resnet.py). That extractor's preprocessing:

- frames: every decoded frame (main.py: ffmpeg to JPEG, no fps change), natural-sorted;
  clips of 16 consecutive frames with stride 16 (`--frequency` 16), starting at frame 0;
  a last clip shorter than 16 frames is dropped (extract_features.py `run`).
- resize: each frame to 340 x 256 (width x height, aspect ignored) with PIL
  `Image.ANTIALIAS` (Lanczos), before cropping (extract_features.py `load_frame`).
- crops (`sample_mode="oversample"`, the default): five 224 x 224 crops of the 256 x 340
  frame in the order top-left, top-right, centre (rows 16:240, columns 58:282),
  bottom-left, bottom-right, then the same five of the horizontally flipped frame
  (extract_features.py `oversample_data`); `TEN_CROP_BOXES` lists them.
- pixels: RGB, `x * 2 / 255 - 1` (range [-1, 1]), no mean/std; computed in float64 and
  cast to float32 (extract_features.py `load_frame`, `forward_batch`); `normalize_clips`.
- feature: eval mode (BatchNorm on running statistics); the stem, layer1, the temporal
  max-pool, layer2-4, then `AdaptiveAvgPool3d(1)` over the [2048, 2, 7, 7] output of
  layer4 (16 x 224 x 224 input); no dropout, no `fc` (resnet.py `forward_single`).
  A video gives [clips, 10, 2048] (crop index second).

State-dict keys are the official ones (`conv1.weight`, `layer3.4.bn2.running_var`,
`layer1.0.downsample.0.weight`, `fc.weight`, ...), so `i3d_r50_kinetics.pth` (a plain
dict of tensors, without `num_batches_tracked`) loads with `strict=True`.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# The same [-1, 1] recipe as InceptionI3d's features (re-exported: extractors look it up here).
from synthvad.features.i3d import normalize_clips as normalize_clips

I3D_RESNET_FEATURE_DIM = 2048
CLIP_FRAMES = 16
CROP_SIZE = 224
KINETICS_CLASSES = 400  # the checkpoint's `fc` (unused by `features`)
RESIZE_HW = (256, 340)  # frame height, width before the ten crops
# (flipped, top, left) of each 224 crop of the RESIZE_HW frame, in the extractor's order;
# a flipped crop is taken from the horizontally mirrored frame.
TEN_CROP_BOXES: tuple[tuple[bool, int, int], ...] = tuple(
    (flip, top, left)
    for flip in (False, True)
    for top, left in ((0, 0), (0, 116), (16, 58), (32, 0), (32, 116))
)
WEIGHTS_KEY = "features.i3d.weights"

# (planes, blocks, spatial stride of the first block, temporal kernel of each block's conv1)
_STAGES: tuple[tuple[int, int, int, tuple[int, ...]], ...] = (
    (64, 3, 1, (3, 3, 3)),
    (128, 4, 2, (3, 1, 3, 1)),
    (256, 6, 2, (3, 1, 3, 1, 3, 1)),
    (512, 3, 2, (1, 3, 1)),
)
_EXPANSION = 4


class _Bottleneck(nn.Module):
    """Inflated bottleneck: (kt x 1 x 1) -> (1 x 3 x 3, spatial stride) -> 1 x 1 x 1."""

    def __init__(self, in_ch: int, planes: int, stride: int, kt: int) -> None:
        super().__init__()
        out_ch = planes * _EXPANSION
        self.conv1 = nn.Conv3d(in_ch, planes, (kt, 1, 1), padding=(kt // 2, 0, 0), bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = nn.Conv3d(
            planes, planes, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), bias=False
        )
        self.bn2 = nn.BatchNorm3d(planes)
        self.conv3 = nn.Conv3d(planes, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(out_ch)
        self.downsample: nn.Sequential | None = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(
                nn.Conv3d(in_ch, out_ch, 1, stride=(1, stride, stride), bias=False),
                nn.BatchNorm3d(out_ch),
            )

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(y + shortcut)


class I3DResNet50(nn.Module):
    """I3D ResNet-50 (no non-local blocks) with the official state-dict key names.

    `features` is the VAD extractor's output; `forward` adds the Kinetics-400 classifier
    (`fc` on the pooled feature, as the original network's eval path).
    """

    def __init__(self, num_classes: int = KINETICS_CLASSES) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(3, 64, (5, 7, 7), stride=2, padding=(2, 3, 3), bias=False)
        self.bn1 = nn.BatchNorm3d(64)
        in_ch = 64
        for i, (planes, blocks, stride, kts) in enumerate(_STAGES, start=1):
            assert len(kts) == blocks
            stage = []
            for b, kt in enumerate(kts):
                stage.append(_Bottleneck(in_ch, planes, stride if b == 0 else 1, kt))
                in_ch = planes * _EXPANSION
            setattr(self, f"layer{i}", nn.Sequential(*stage))
        self.fc = nn.Linear(I3D_RESNET_FEATURE_DIM, num_classes)

    def features(self, x: Tensor) -> Tensor:
        """[B, 3, T, H, W] normalised clips (T=16, H=W=224) -> [B, 2048]: the spatio-temporal
        mean (AdaptiveAvgPool3d(1)) of layer4's output, i.e. the extractor's feature."""
        if x.dim() != 5 or x.shape[1] != 3:
            raise ValueError(f"expected clips [B, 3, T, H, W], got {tuple(x.shape)}")
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool3d(x, kernel_size=(2, 3, 3), stride=2)  # no padding (official)
        x = self.layer1(x)
        x = F.max_pool3d(x, kernel_size=(2, 1, 1), stride=(2, 1, 1))
        x = self.layer4(self.layer3(self.layer2(x)))
        return x.mean(dim=(2, 3, 4))

    def forward(self, x: Tensor) -> Tensor:
        """Kinetics-400 logits [B, num_classes] (dropout is the identity in eval mode)."""
        return self.fc(self.features(x))


def random_state_dict(seed: int = 0) -> dict[str, Tensor]:
    """Seeded random weights in the checkpoint's format (no `num_batches_tracked`).

    One `torch.Generator().manual_seed(seed)`; for each key in sorted order, one draw
    z = torch.randn(shape) (float32), mapped by kind:
      conv / fc weight (dim > 1): z * sqrt(1 / fan_in), fan_in = shape[1] * prod(shape[2:]);
      BatchNorm weight: 1 + 0.1 z;  running_var: 1 + 0.1 |z|;
      BatchNorm bias, running_mean, fc.bias: 0.1 z.
    Activations stay O(1) through all 53 layers (tests/fixtures/i3d_resnet_official.*).
    """
    with torch.device("meta"):  # shapes only: no initialisation
        names = I3DResNet50().state_dict()
    shapes = {k: v.shape for k, v in names.items() if not k.endswith("num_batches_tracked")}
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, Tensor] = {}
    for key in sorted(shapes):
        shape = shapes[key]
        z = torch.randn(shape, generator=gen, dtype=torch.float32)
        if len(shape) > 1:
            out[key] = z * math.sqrt(1.0 / (shape[1] * math.prod(shape[2:])))
        elif key.endswith("running_var"):
            out[key] = 1 + 0.1 * z.abs()
        elif key.endswith("weight"):
            out[key] = 1 + 0.1 * z
        else:
            out[key] = 0.1 * z
    return out


def _load_strict(model: I3DResNet50, state: dict[str, Tensor], source: str) -> None:
    expected = model.state_dict()
    optional = {k for k in expected if k.endswith("num_batches_tracked")}
    missing = sorted(set(expected) - set(state) - optional)
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"{source}: not an I3D-ResNet50 (i3d_r50_kinetics.pth) state dict; "
            f"missing keys: {missing or 'none'}; unexpected keys: {unexpected or 'none'}"
        )
    wrong = [
        f"{k}: {tuple(v.shape)} != {tuple(expected[k].shape)}"
        for k, v in state.items()
        if tuple(v.shape) != tuple(expected[k].shape)
    ]
    if wrong:
        raise ValueError(f"{source}: wrong shapes: {wrong}")
    full = dict(state)
    for k in optional:  # the converted checkpoint has none: counters start at 0
        full.setdefault(k, torch.zeros((), dtype=torch.long))
    model.load_state_dict(full, strict=True, assign=True)  # `model` may live on "meta"


def load_i3d_resnet50(path: str | None, seed: int = 0) -> I3DResNet50:
    """The network in eval mode: from `i3d_r50_kinetics.pth` (`path`, the config's
    `features.i3d.weights`), or `random_state_dict(seed)` when `path` is None (tests).

    The official checkpoint is a flat dict of tensors (no "state_dict" wrapper, no
    "module." prefix); it is read with `weights_only=True` and loaded strictly.
    """
    with torch.device("meta"):  # every tensor comes from the state dict
        model = I3DResNet50()
    if path is None:
        _load_strict(model, random_state_dict(seed), f"random_state_dict(seed={seed})")
        return model.eval()
    if not Path(path).is_file():
        raise FileNotFoundError(
            f"{WEIGHTS_KEY}: I3D-ResNet50 weights {path!r} not found (i3d_r50_kinetics.pth: "
            "convert i3d_baseline_32x2_IN_pretrain_400k.pkl with "
            "pytorch-resnet3d's utils/convert_weights.py)"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a flat dict of tensors (i3d_r50_kinetics.pth)")
    _load_strict(
        model, {k: v.float() if v.is_floating_point() else v for k, v in state.items()}, path
    )
    return model.eval()

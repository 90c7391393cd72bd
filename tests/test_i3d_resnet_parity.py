"""synthvad's I3D-ResNet50 against the official RTFM feature extractor.

tests/fixtures/i3d_resnet_official.safetensors (made by
tests/fixtures/make_i3d_resnet_fixture.py) holds the official state-dict key names and shapes,
the rule and per-key sums of the random weights the official network ran with, the rule of
its input frames, the official `extract_features.run` output [2 clips, 10 crops, 2048] and
pytorch-resnet3d's logits on two (clip, crop) pairs. The weights and frames are regenerated
here; features must agree to 1e-4 relative (float32, CPU). The two checked pairs run in one
batch of 2; SYNTHVAD_I3D_ALL_CROPS=1 also checks all 20 (about a minute on 2 cores).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from synthvad.features.i3d_resnet import (
    CLIP_FRAMES,
    CROP_SIZE,
    I3D_RESNET_FEATURE_DIM,
    RESIZE_HW,
    TEN_CROP_BOXES,
    I3DResNet50,
    load_i3d_resnet50,
    normalize_clips,
    random_state_dict,
)

FIXTURE = Path(__file__).parent / "fixtures" / "i3d_resnet_official.safetensors"


@pytest.fixture(scope="module")
def ref() -> dict:
    with safe_open(str(FIXTURE), framework="pt") as fh:
        out: dict = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
        meta = fh.metadata()
    out["meta"] = meta
    for key in ("official_keys", "weight_sums", "logit_pairs", "commits"):
        out[key] = json.loads(meta[key])
    return out


@pytest.fixture(scope="module")
def checkpoint(ref, tmp_path_factory) -> Path:
    """The fixture's random weights as a checkpoint file in the official format."""
    path = tmp_path_factory.mktemp("i3d") / "i3d_r50_random.pth"
    torch.save(random_state_dict(int(ref["meta"]["weights_seed"])), path)
    return path


@pytest.fixture(scope="module")
def model(checkpoint) -> I3DResNet50:
    return load_i3d_resnet50(str(checkpoint))


def clip_crops(ref, pairs: list[tuple[int, int]]) -> torch.Tensor:
    """uint8 [len(pairs), 16, 3, 224, 224]: the fixture's frames, cropped as the extractor."""
    frames = torch.randint(
        0,
        256,
        (2 * CLIP_FRAMES, *RESIZE_HW, 3),
        generator=torch.Generator().manual_seed(int(ref["meta"]["input_seed"])),
        dtype=torch.uint8,
    )
    out = []
    for clip, crop in pairs:
        x = frames[clip * CLIP_FRAMES : (clip + 1) * CLIP_FRAMES]  # [T, H, W, 3]
        flip, top, left = TEN_CROP_BOXES[crop]
        if flip:
            x = x.flip(2)
        out.append(x[:, top : top + CROP_SIZE, left : left + CROP_SIZE].permute(0, 3, 1, 2))
    return torch.stack(out)


def assert_close_rel(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """1e-4 relative, with an absolute floor of 1e-4 of the largest value (ReLU zeros)."""
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))


def test_key_names_and_shapes_match_official(ref):
    ours = [[k, list(v.shape), str(v.dtype)] for k, v in I3DResNet50().state_dict().items()]
    assert ours == ref["official_keys"]
    assert ref["commits"]["Tushar-N/pytorch-resnet3d"].startswith("8d3e1da")
    checkpoint_keys = {k for k, _, _ in ref["official_keys"]} - {
        k for k, _, _ in ref["official_keys"] if k.endswith("num_batches_tracked")
    }
    assert set(random_state_dict(0)) == checkpoint_keys


def test_regenerated_weights_equal_the_official_run(ref):
    weights = random_state_dict(int(ref["meta"]["weights_seed"]))
    sums = {k: float(v.double().sum()) for k, v in weights.items()}
    assert sums == pytest.approx(ref["weight_sums"], rel=1e-9, abs=1e-9)


def test_features_and_logits_match_official(ref, model):
    pairs = [tuple(p) for p in ref["logit_pairs"]]
    x = normalize_clips(clip_crops(ref, pairs))
    assert x.shape == (2, 3, CLIP_FRAMES, CROP_SIZE, CROP_SIZE)
    with torch.inference_mode():
        feats = model.features(x)
        logits = model.fc(feats)
    assert feats.shape == (2, I3D_RESNET_FEATURE_DIM) and feats.dtype == torch.float32
    expected = torch.stack([ref["official/features"][c, k] for c, k in pairs])
    assert_close_rel(feats, expected)
    assert_close_rel(logits, ref["official/logits"])


@pytest.mark.skipif(
    not os.environ.get("SYNTHVAD_I3D_ALL_CROPS"), reason="set SYNTHVAD_I3D_ALL_CROPS=1"
)
def test_all_ten_crops_match_official(ref, model):
    pairs = [(c, k) for c in range(2) for k in range(10)]
    feats = []
    with torch.inference_mode():
        for i in range(0, len(pairs), 4):
            feats.append(model.features(normalize_clips(clip_crops(ref, pairs[i : i + 4]))))
    assert_close_rel(torch.cat(feats).view(2, 10, -1), ref["official/features"])


def test_missing_weights_name_the_config_key(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"features\.i3d\.weights"):
        load_i3d_resnet50(str(tmp_path / "absent.pth"))


def test_wrong_keys_are_listed(tmp_path):
    # keys are checked before shapes: tiny tensors keep the files small
    with torch.device("meta"):
        names = I3DResNet50().state_dict()
    state = {k: torch.zeros(1) for k in names if not k.endswith("num_batches_tracked")}
    wrapped = tmp_path / "wrapped.pth"  # not the official format: not unwrapped
    torch.save({f"module.{k}": v for k, v in state.items()}, wrapped)
    with pytest.raises(ValueError, match=r"module\.conv1\.weight"):
        load_i3d_resnet50(str(wrapped))

    state["layer9.0.conv1.weight"] = state.pop("layer4.2.bn3.running_mean")
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match="missing keys") as err:
        load_i3d_resnet50(str(path))
    assert "layer4.2.bn3.running_mean" in str(err.value)
    assert "layer9.0.conv1.weight" in str(err.value)

    state["layer4.2.bn3.running_mean"] = state.pop("layer9.0.conv1.weight")
    torch.save(state, path)  # right names, wrong shapes
    with pytest.raises(ValueError, match="wrong shapes"):
        load_i3d_resnet50(str(path))


def test_random_weights_are_seeded():
    model = load_i3d_resnet50(None, seed=3)
    assert not model.training and not model.conv1.weight.is_meta
    assert torch.equal(model.conv1.weight, random_state_dict(3)["conv1.weight"])
    assert int(model.bn1.num_batches_tracked) == 0
    assert not torch.equal(model.conv1.weight, random_state_dict(4)["conv1.weight"])


def test_normalize_clips_by_hand():
    # [B=1, T=2, C=3, 1, 2]: pixel p -> 2 p / 255 - 1, laid out [B, C, T, H, W]
    clips = torch.tensor(
        [[[[[0, 255]], [[51, 102]], [[153, 204]]], [[[255, 0]], [[204, 153]], [[102, 51]]]]],
        dtype=torch.uint8,
    )
    out = normalize_clips(clips)
    expected = torch.tensor(
        [
            [
                [[[-1.0, 1.0]], [[1.0, -1.0]]],
                [[[-0.6, -0.2]], [[0.6, 0.2]]],
                [[[0.2, 0.6]], [[-0.2, -0.6]]],
            ]
        ]
    )
    assert out.shape == (1, 3, 2, 1, 2) and out.dtype == torch.float32
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-7)
    with pytest.raises(ValueError):
        normalize_clips(clips.float())


def test_ten_crop_boxes_are_the_extractors():
    # extract_features.py oversample_data on a [256, 340] frame, flips of the whole frame
    frame = torch.arange(RESIZE_HW[0] * RESIZE_HW[1]).view(RESIZE_HW)
    flipped = frame.flip(1)
    official = [
        f[a:b, c:d]
        for f in (frame, flipped)
        for a, b, c, d in ((0, 224, 0, 224), (0, 224, -224, None), (16, 240, 58, 282))
        + ((-224, None, 0, 224), (-224, None, -224, None))
    ]
    for (flip, top, left), want in zip(TEN_CROP_BOXES, official, strict=True):
        f = flipped if flip else frame
        assert torch.equal(f[top : top + CROP_SIZE, left : left + CROP_SIZE], want)

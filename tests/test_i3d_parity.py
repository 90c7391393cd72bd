"""synthvad's InceptionI3d against the official piergiaj/pytorch-i3d code.

tests/fixtures/i3d_official.safetensors (made by tests/fixtures/make_i3d_fixture.py) holds
the official state dict's key names and shapes, the seeded rule that regenerates its random
weights and input, checksums of both, and the official features and logits for that input.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from synthvad.features.i3d import (
    CLIP_FRAMES,
    CROP_SIZE,
    I3D_FEATURE_DIM,
    InceptionI3d,
    load_inception_i3d,
    normalize_clips,
    random_state_dict,
)

FIXTURE = Path(__file__).parent / "fixtures" / "i3d_official.safetensors"
TOL = {"atol": 1e-4, "rtol": 1e-4}
INPUT_SHAPE = (2, CLIP_FRAMES, 3, CROP_SIZE, CROP_SIZE)


@pytest.fixture(scope="module")
def official():
    with safe_open(str(FIXTURE), framework="pt") as fh:
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
        meta = fh.metadata()
    shapes = {k: tuple(v) for k, v in json.loads(meta["shapes"]).items()}
    return shapes, tensors, meta


@pytest.fixture(scope="module")
def regenerated(official):
    """The fixture's weights (strictly loaded) and model input, regenerated from the rule."""
    shapes, ref, _ = official
    weights = random_state_dict(shapes, seed=0)
    sums = torch.stack([weights[k].double().sum() for k in sorted(weights)])
    torch.testing.assert_close(sums, ref["check/weight_sums"], rtol=1e-12, atol=1e-9)
    model = InceptionI3d()
    model.load_state_dict(weights, strict=True)
    clips = torch.randint(
        0, 256, INPUT_SHAPE, generator=torch.Generator().manual_seed(1), dtype=torch.uint8
    )
    x = normalize_clips(clips)
    torch.testing.assert_close(x.double().sum().reshape(1), ref["check/input_sum"])
    return model.eval(), x


def test_key_names_and_shapes_match_official(official):
    shapes, _, meta = official
    ours = {k: tuple(v.shape) for k, v in InceptionI3d().state_dict().items()}
    assert ours == shapes
    assert meta["official_commit"] == "05783d11f9632b25fe3d50395a9c9bb51f848d6d"
    assert shapes["logits.conv3d.weight"] == (400, I3D_FEATURE_DIM, 1, 1, 1)


def test_features_and_logits_match_official(official, regenerated):
    _, ref, _ = official
    model, x = regenerated
    with torch.no_grad():
        features = model.features(x)  # one forward: the head runs on the pooled features
        logits = model.head(features[:, :, None, None, None])
    assert features.shape == (2, I3D_FEATURE_DIM) and features.dtype == torch.float32
    assert ref["official/features"].std() > 1.0  # the random net is not degenerate
    torch.testing.assert_close(features, ref["official/features"], **TOL)
    torch.testing.assert_close(logits, ref["official/logits"], **TOL)


def test_features_reject_clips_that_do_not_pool_to_one_cell(monkeypatch):
    model = InceptionI3d().eval()
    with torch.no_grad(), pytest.raises(ValueError, match="too small"):
        model.features(torch.zeros(1, 3, 16, 32, 32))  # Mixed_5c is 2 x 1 x 1
    # A 32 x 256 x 256 clip would pool to [2, 2, 2]; stand in for its (slow) forward.
    monkeypatch.setattr(model, "pooled", lambda x: torch.zeros(1, I3D_FEATURE_DIM, 2, 2, 2))
    with pytest.raises(ValueError, match="1x1x1"):
        model.features(torch.zeros(1, 3, 32, 256, 256))


def test_load_inception_i3d_random_and_strict_file(tmp_path):
    model = load_inception_i3d(None, seed=3)
    assert not model.training
    again = load_inception_i3d(None, seed=3).state_dict()
    for key, value in model.state_dict().items():
        assert torch.equal(value, again[key]), key
    # A 2018-style checkpoint: no num_batches_tracked keys, 157 Charades classes.
    state = {
        k: v
        for k, v in InceptionI3d(num_classes=157).state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    path = tmp_path / "rgb_charades.pt"
    torch.save(state, path)
    loaded = load_inception_i3d(str(path))
    assert loaded.logits.conv3d.out_channels == 157
    assert torch.equal(loaded.Mixed_5c.b3b.conv3d.weight, state["Mixed_5c.b3b.conv3d.weight"])


def test_load_inception_i3d_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"features\.i3d\.weights"):
        load_inception_i3d(str(tmp_path / "absent.pt"))
    state = InceptionI3d().state_dict()
    state = {f"module.{k}" if k.startswith("Mixed_3b.") else k: v for k, v in state.items()}
    del state["logits.conv3d.bias"]
    path = tmp_path / "wrong.pt"
    torch.save(state, path)
    with pytest.raises(ValueError) as err:
        load_inception_i3d(str(path))
    text = str(err.value)
    assert "features.i3d.weights" in text
    assert (
        "missing keys" in text
        and "logits.conv3d.bias" in text
        and "Mixed_3b.b0.conv3d.weight" in text
    )
    assert "unexpected keys" in text and "module.Mixed_3b.b0.conv3d.weight" in text


def test_normalize_clips_hand_values():
    clips = torch.zeros(1, 2, 3, 1, 2, dtype=torch.uint8)  # [B, T, 3, H, W]
    clips[0, 0, :, 0, 0] = torch.tensor([0, 255, 51], dtype=torch.uint8)
    clips[0, 1, 2, 0, 1] = 102
    out = normalize_clips(clips)
    assert out.shape == (1, 3, 2, 1, 2) and out.dtype == torch.float32
    assert out[0, :, 0, 0, 0].tolist() == pytest.approx([-1.0, 1.0, -0.6])  # 51 * 2 / 255 - 1
    assert out[0, 2, 1, 0, 1].item() == pytest.approx(-0.2)  # 102 * 2 / 255 - 1
    assert out[0, 0, 1, 0, 1].item() == -1.0
    with pytest.raises(ValueError):
        normalize_clips(clips.float())

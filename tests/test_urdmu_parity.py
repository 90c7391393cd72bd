"""synthvad's `urdmu` against the released UR-DMU code (henrryzh1/UR-DMU).

tests/fixtures/urdmu_official.safetensors holds the official model's state dict, an input
batch, the reparameterisation noise its forward drew, its outputs and every AD_Loss term
(made by tests/fixtures/make_urdmu_fixture.py). The official weights load into synthvad's
model through the documented key map; outputs and losses must agree to 1e-5.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from synthvad.detect.data import Batch, Video
from synthvad.detect.train import Alpha, scaled_step_loss, score_videos
from synthvad.detect.urdmu import URDMU, distance_kernel, from_official

FIXTURE = Path(__file__).parent / "fixtures" / "urdmu_official.safetensors"
TOL = {"atol": 1e-5, "rtol": 1e-5}


@pytest.fixture(scope="module")
def official():
    with safe_open(str(FIXTURE), framework="pt") as fh:
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
        dims = json.loads(fh.metadata()["dims"])
    state = {k[len("state/") :]: v for k, v in tensors.items() if k.startswith("state/")}
    cfg = {
        "embed_dim": dims["width"],
        "heads": dims["heads"],
        "head_dim": dims["head_dim"],
        "layers": 2,
        "mlp_dim": dims["mlp_dim"],
        "dropout": 0.5,
        "classifier_hidden": 128,
        "memory_abnormal": dims["slots"],
        "memory_normal": dims["slots"],
        "lambda_memory": 0.1,
        "lambda_triplet": 0.1,
        "lambda_kl": 0.001,
        "lambda_distance": 0.0001,
        "triplet_margin": 1.0,
        "distance_margin": 100.0,
    }
    model = URDMU(dims["input"], cfg)
    model.load_state_dict(from_official(state, layers=2))  # strict: every key mapped
    return model.eval(), tensors


def test_training_path_outputs_match(official):
    model, ref = official
    out = model.terms(ref["input/x"], ref["input/labels"], ref["noise"])
    torch.testing.assert_close(out["scores"], ref["out/frame"], **TOL)
    for key in ("A_att", "N_att", "A_Natt", "N_Aatt"):
        torch.testing.assert_close(out[key], ref[f"out/{key}"], **TOL)


def test_every_loss_term_matches(official):
    model, ref = official
    labels = ref["input/labels"]
    out = model.terms(ref["input/x"], labels, ref["noise"])
    pairs = {
        "att_loss": "att_loss",
        "N_Aatt_loss": "N_Aatt",
        "A_loss": "A_loss",
        "N_loss": "N_loss",
        "A_Nloss": "A_Nloss",
        "triplet": "triplet",
        "kl": "kl_loss",
        "distance": "distance",
    }
    for ours, theirs in pairs.items():
        torch.testing.assert_close(out[ours].mean(), ref[f"loss/{theirs}"], **TOL, msg=ours)
    total = model.per_video_loss(out, labels).mean()
    torch.testing.assert_close(total, ref["loss/total_loss"], **TOL)


def test_the_training_step_objective_is_the_released_cost(official, monkeypatch):
    model, ref = official
    labels = ref["input/labels"]
    monkeypatch.setattr(torch, "randn_like", lambda t: ref["noise"])
    batch = Batch(
        x=ref["input/x"],
        mask=torch.ones(ref["input/x"].shape[:2], dtype=torch.bool),
        labels=labels,
        is_synthetic=torch.zeros(len(labels), dtype=torch.bool),
    )
    model.train()
    try:
        model.apply(lambda m: m.eval() if isinstance(m, torch.nn.Dropout) else None)
        loss, _ = scaled_step_loss(model.objective(batch), Alpha(1.0, 0.5))
    finally:
        model.eval()
    torch.testing.assert_close(loss, ref["loss/total_loss"], **TOL)


def test_test_path_averages_crop_scores_like_the_release(official):
    model, ref = official
    x = ref["input/x_test"][0].numpy()  # [10 crops, T, D]
    video = Video("v", "test", "real", None, 1, x, np.full(x.shape[1], 16))
    (scores,) = score_videos(model, [video], torch.device("cpu"), batch_size=4)
    np.testing.assert_allclose(scores, ref["out/test_frame"][0].numpy(), atol=1e-5, rtol=1e-5)


def test_videos_of_other_lengths_are_scored_unpadded(official):
    model, ref = official
    x = ref["input/x_test"][0, :2]  # two crops, T = 40
    mask = torch.ones(4, 40, dtype=torch.bool)
    mask[2:, 25:] = False  # two rows are only 25 segments long
    padded = torch.zeros(4, 40, x.shape[-1])
    padded[:2], padded[2:, :25] = x, x[:, :25]
    scores = model(padded, mask)
    torch.testing.assert_close(scores[:2], model(x, torch.ones(2, 40, dtype=torch.bool)))
    torch.testing.assert_close(scores[2:, :25], model._score(x[:, :25]))
    assert torch.all(scores[2:, 25:] == 0)


def test_banded_distance_mix_equals_the_dense_kernel():
    from synthvad.detect.urdmu import distance_mix

    for n in (1, 5, 200, 400):
        t = torch.randn(2, 3, n, 4, dtype=torch.float64)
        dense = distance_kernel(n, torch.device("cpu"), torch.float64) @ t
        torch.testing.assert_close(distance_mix(t), dense, atol=1e-9, rtol=1e-9)


def test_distance_kernel_divides_by_column_sums():
    kernel = distance_kernel(3, torch.device("cpu"), torch.float64)
    raw = torch.exp(-torch.tensor([[0, 1, 2], [1, 0, 1], [2, 1, 0]], dtype=torch.float64) / np.e)
    torch.testing.assert_close(kernel, raw / raw.sum(dim=0, keepdim=True))
    assert not torch.allclose(kernel.sum(dim=-1), torch.ones(3, dtype=torch.float64))


def test_released_checkpoint_keys_load_into_the_default_urdmu():
    from synthvad.config import load_schema

    with safe_open(str(FIXTURE), framework="pt") as fh:
        shapes = json.loads(fh.metadata()["released_shapes"])
    schema = load_schema()["properties"]["detectors"]["additionalProperties"]["allOf"]
    defaults = {
        key: spec["default"]
        for branch in schema
        if "urdmu" in json.dumps(branch["if"])
        for key, spec in branch["then"]["properties"].items()
    }
    model = URDMU(1024, defaults)
    state = {key: torch.zeros(shape) for key, shape in shapes.items()}
    model.load_state_dict(from_official(state, layers=defaults["layers"]))  # strict
    assert sum(p.numel() for p in model.parameters()) == sum(v.numel() for v in state.values())


def test_init_from_a_released_checkpoint_evaluates_it_without_training(official, tmp_path):
    from .test_detect import make_dataset, run

    model, ref = official
    checkpoint = tmp_path / "ucf_trans_2022.pkl"
    state = {k[len("state/") :]: v for k, v in ref.items() if k.startswith("state/")}
    torch.save(state, checkpoint)  # the released files are plain state dicts
    data = make_dataset(tmp_path / "data", crops=1)  # 16-D features, as the fixture model
    cfg = {
        "model": "urdmu",
        "embed_dim": 32, "heads": 4, "head_dim": 8, "layers": 2, "mlp_dim": 32,
        "dropout": 0.5, "classifier_hidden": 128, "memory_abnormal": 20, "memory_normal": 20,
        "lambda_memory": 0.1, "lambda_triplet": 0.1, "lambda_kl": 0.001,
        "lambda_distance": 0.0001, "triplet_margin": 1.0, "distance_margin": 100.0,
        "standardize": False, "lr": 1e-4, "weight_decay": 5e-5, "batch_size": 4, "epochs": 1,
        "init_from": str(checkpoint), "train": False,
    }  # fmt: skip
    metrics = run(data, tmp_path / "run", detector="urdmu", cfg=cfg)
    assert metrics["best_epochs"] == [None]
    from synthvad.detect.train import load_detector

    loaded = load_detector(str(tmp_path / "run" / "model.safetensors"))
    x = ref["input/x_test"][0, :3]
    mask = torch.ones(3, x.shape[1], dtype=torch.bool)
    torch.testing.assert_close(loaded(x, mask), model(x, mask))
    with pytest.raises(FileNotFoundError, match="init_from"):
        run(data, tmp_path / "run2", detector="urdmu", cfg={**cfg, "init_from": "missing.pkl"})

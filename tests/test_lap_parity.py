"""synthvad's `lap` against GV-VAD's released code (Sumutan/GV-VAD).

tests/fixtures/lap_official.safetensors holds, for the README's caption + visual run
(`both`) and a visual-only run (`vis`), the official model's state dict, an input batch,
the class-text bank, its outputs, every loss term, the cost and VLR-scaled total of its
training step, and its test-path scores (made by tests/fixtures/make_lap_fixture.py).
"""

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from synthvad.detect.data import Batch, Video
from synthvad.detect.lap import LAP, from_official, vlr_factor
from synthvad.detect.train import Alpha, scaled_step_loss, score_videos

FIXTURE = Path(__file__).parent / "fixtures" / "lap_official.safetensors"
TOL = {"atol": 1e-5, "rtol": 1e-5}


@pytest.fixture(scope="module")
def fixture():
    with safe_open(str(FIXTURE), framework="pt") as fh:
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
        dims = json.loads(fh.metadata()["dims"])
    return tensors, dims


def build(fixture, tag: str, state: str = "state", **overrides) -> tuple[LAP, dict]:
    tensors, dims = fixture
    prefix = f"{tag}/{state}/"
    official = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    cfg = {
        "caption_dim": dims["caption"] if tag == "both" else 0,
        "head_hidden": dims["hidden"],
        "dropout": 0.0,  # the fixture ran with dropout off
        **overrides,
    }
    model = LAP(dims["input"], cfg)
    model.load_state_dict(from_official(official, caption_context=tag == "both"))
    model.set_bank(tensors[f"{tag}/input/bank"])
    ref = {k[len(tag) + 1 :]: v for k, v in tensors.items() if k.startswith(f"{tag}/")}
    return model, ref


def caption_of(tag: str, ref: dict, key: str = "input/caption"):
    return ref[key] if tag == "both" else None


@pytest.mark.parametrize("tag", ["both", "vis"])
def test_training_outputs_and_terms_match(fixture, tag):
    model, ref = build(fixture, tag)
    model.train()
    out = model.terms(ref["input/x"], ref["input/labels"], caption_of(tag, ref))
    for key in ("scores", "feature_magnitudes", "video_score", "pseudo_labels"):
        torch.testing.assert_close(out[key], ref[f"out/{key}"], **TOL)
    for key in ("bce", "magnitude", "smoothness", "sparsity", "pseudo", "triplet"):
        torch.testing.assert_close(out[key], ref[f"loss/{key}"], **TOL, msg=key)
    torch.testing.assert_close(out["cost"], ref["loss/cost_real"], **TOL)


@pytest.mark.parametrize("tag", ["both", "vis"])
def test_per_video_loss_averages_to_the_released_cost(fixture, tag):
    model, ref = build(fixture, tag)
    model.train()
    out = model.terms(ref["input/x"], ref["input/labels"], caption_of(tag, ref))
    per_video = model.per_video_loss(out, n=3)
    assert per_video.shape == (6,)
    torch.testing.assert_close(per_video.mean(), ref["loss/cost_real"], **TOL)


def test_released_vlr_scales_the_batch_by_its_abnormal_mix(fixture):
    """train_tcc_difLR: cost * (real share + synthetic share * VLR * warm-up factor)."""
    _, dims = fixture
    model, ref = build(fixture, "vis", ssls="released", vlr_strategy="linear_cosine")
    model.train()
    x = ref["input/x"][:, 0]  # synthvad batches hold one crop; the cost is per crop set
    labels = ref["input/labels"]
    synthetic = torch.tensor([False, False, False, False, True, True])
    batch = Batch(x=x, mask=torch.ones(6, x.shape[1], dtype=torch.bool), labels=labels,
                  is_synthetic=synthetic)  # fmt: skip
    objective = model.objective(batch)
    cost = model.terms(x.unsqueeze(1), labels)["cost"]
    factor = vlr_factor(dims["vlr_step"], dims["vlr_steps"], "linear_cosine")
    alpha = Alpha(dims["vlr"] * factor, 0.5)
    loss, _ = scaled_step_loss(objective, alpha)
    expected = cost * (1 / 3 + 2 / 3 * dims["vlr"] * factor)
    torch.testing.assert_close(loss, expected, **TOL)
    # The official run, on 5 crops: the same rule applied to its own cost.
    ratio = ref["loss/total_mixed"] / ref["loss/cost_real"]
    torch.testing.assert_close(ratio, torch.tensor(1 / 3 + 2 / 3 * dims["vlr"] * factor), **TOL)


@pytest.mark.parametrize("tag", ["both", "vis"])
def test_test_path_matches(fixture, tag):
    model, ref = build(fixture, tag, state="eval_state")
    model.eval()
    x, caption = ref["input/x_test"][0], caption_of(tag, ref, "input/caption_test")
    with torch.no_grad():
        rows = model.score_rows(x, None if caption is None else caption[0])
    torch.testing.assert_close(rows.mean(dim=0), ref["out/test_scores"], **TOL)
    if tag == "vis":  # the workflow's scoring: every crop a row, scores averaged
        video = Video(
            "v", "test", "real", None, 1, x.numpy(), x.new_ones(x.shape[1]).long().numpy()
        )
        (scores,) = score_videos(model, [video], torch.device("cpu"), batch_size=4)
        torch.testing.assert_close(torch.from_numpy(scores), ref["out/test_scores"], **TOL)


def test_vlr_schedule_as_released():
    # Offset 100: with 1,000 steps (warm-up 100) the released schedule is past warm-up.
    assert vlr_factor(1, 1000, "linear_cosine") == pytest.approx(
        0.5 * (1 + torch.cos(torch.tensor(torch.pi * 1 / 900)).item())
    )
    assert vlr_factor(5, 50, "none") == 1.0
    # 50 steps: warm-up 5 steps, evaluated at step + 100: linear decay of the cosine.
    assert vlr_factor(0, 2000, "linear_none") == pytest.approx(0.001 + 0.999 * 100 / 200)
    assert vlr_factor(1000, 2000, "linear_step") == pytest.approx(0.1**4)
    with pytest.raises(ValueError, match="unknown VLR strategy"):
        vlr_factor(1, 10, "warm")


def test_released_checkpoint_keys_load(tmp_path, fixture):
    tensors, dims = fixture
    state = {k[len("both/state/") :]: v for k, v in tensors.items() if k.startswith("both/state/")}
    path = tmp_path / "lap.pkl"
    torch.save(state, path)
    model = LAP(dims["input"], {"caption_dim": dims["caption"], "head_hidden": dims["hidden"]})
    model.load_released(str(path))
    torch.testing.assert_close(model.head[0].weight, state["fc1.weight"])
    with pytest.raises(FileNotFoundError, match="init_from"):
        model.load_released(str(tmp_path / "missing.pkl"))
    bad = dict(state, **{"extra.weight": torch.zeros(1)})
    torch.save(bad, path)
    with pytest.raises(KeyError, match="extra.weight"):
        model.load_released(str(path))


def test_released_fold_terms_by_hand():
    from synthvad.detect.lap import fold_width, released_smoothness, released_sparsity

    s = torch.tensor([[0.0, 1.0, 0.5, 0.5]])  # one abnormal video, T = 4: fold width 1
    assert fold_width(4) == 1 and fold_width(64) == 2 and fold_width(96) == 3
    # (1-0)^2 + (0.5-1)^2 + 0 = 1.25; ||s|| = sqrt(1 + 0.25 + 0.25)
    assert float(released_smoothness(s)) == pytest.approx(1.25)
    assert float(released_sparsity(s)) == pytest.approx(1.5**0.5)
    # T = 64: rows of two; row r+1 - row r compares segments two apart
    s64 = torch.zeros(1, 64)
    s64[0, 1] = 1.0  # row 0 = (0, 1), row 1 = (0, 0): one difference of 1 in column 1
    assert float(released_smoothness(s64)) == pytest.approx(1.0)
    # column norms: (0, 1) -> mean 0.5
    assert float(released_sparsity(s64)) == pytest.approx(0.5)


def test_pseudo_labels_and_magnitude_by_hand():
    from synthvad.detect.lap import magnitude_loss, pseudo_labels

    bank = torch.tensor([[1.0, 0.0]])
    stream = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [0.0, 2.0], [-1.0, 0.0]]])  # cos 1, 0, 0, -1
    # mean 0, unbiased std sqrt(2/3) = 0.816: only the first is above
    assert pseudo_labels(stream, bank).tolist() == [[1.0, 0.0, 0.0, 0.0]]
    abnormal = torch.tensor([[[3.0, 4.0], [3.0, 4.0]]])  # top-k mean (3, 4): norm 5
    normal = torch.tensor([[[0.0, 2.0], [0.0, 0.0]]])  # mean (0, 1): norm 1
    # (|10 - 5| + 1)^2 = 36
    assert magnitude_loss(abnormal, normal, margin=10.0).tolist() == [36.0]

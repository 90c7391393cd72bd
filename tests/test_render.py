"""The shared numpy renderer: scenes, actors and anomaly events."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from synthvad.render import (
    EVENT_CLASSES,
    SCENES,
    render_background,
    render_event,
    render_generic_anomaly,
    render_normal_clip,
    scene_from_text,
    scene_layout,
)

W, H = 160, 120


def _clip(seed: int, n_frames: int = 40, scene: str = "street") -> np.ndarray:
    rng = np.random.default_rng(seed)
    background = render_background(scene, W, H, rng)
    return render_normal_clip(background, n_frames, rng, 3, 1, scene_layout(scene))


def test_background_shape_and_type() -> None:
    for scene in SCENES:
        bg = render_background(scene, W, H, np.random.default_rng(0))
        assert bg.shape == (H, W, 3)
        assert bg.dtype == np.uint8
        assert bg.std() > 10  # drawn structure, not a flat fill


def test_backgrounds_of_different_scenes_differ() -> None:
    bgs = {s: render_background(s, W, H, np.random.default_rng(0)).astype(float) for s in SCENES}
    for a, b in itertools.combinations(SCENES, 2):
        assert np.abs(bgs[a] - bgs[b]).mean() > 20, (a, b)


def test_background_depends_on_seed_only() -> None:
    a = render_background("plaza", W, H, np.random.default_rng(3))
    b = render_background("plaza", W, H, np.random.default_rng(3))
    c = render_background("plaza", W, H, np.random.default_rng(4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_unknown_scene_names_it_and_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="moon_base") as err:
        render_background("moon_base", W, H, np.random.default_rng(0))
    assert all(s in str(err.value) for s in SCENES)


@pytest.mark.parametrize(
    ("text", "scene"),
    [
        ("a busy street at night", "street"),
        ("Highway traffic", "street"),
        ("train station platform", "corridor"),
        ("office hallway", "corridor"),
        ("city park with a fountain", "plaza"),
    ],
)
def test_scene_from_text_keywords(text: str, scene: str) -> None:
    assert scene_from_text(text) == scene


def test_scene_from_text_fallback_is_stable() -> None:
    for text in ["", "zzz qqq", "somewhere", "an unnamed place 42"]:
        assert scene_from_text(text) in SCENES
        assert scene_from_text(text) == scene_from_text(text)
    # The fallback spreads over scenes rather than collapsing to one.
    assert len({scene_from_text(f"nowhere {i}") for i in range(30)}) == len(SCENES)


def test_normal_clip_moves_and_is_noisy() -> None:
    clip = _clip(0)
    assert clip.shape == (40, H, W, 3) and clip.dtype == np.uint8
    diffs = np.abs(np.diff(clip.astype(np.int16), axis=0)).mean(axis=(1, 2, 3))
    assert (diffs > 0).all()  # sensor noise: no two frames are identical
    assert np.abs(clip[0].astype(int) - clip[-1].astype(int)).max() > 100  # actors moved


def test_normal_clip_is_deterministic() -> None:
    np.testing.assert_array_equal(_clip(5), _clip(5))
    assert not np.array_equal(_clip(5), _clip(6))


def _changed_pixels(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per frame, how many pixels differ by more than 10 levels in some channel."""
    return (np.abs(a.astype(np.int16) - b.astype(np.int16)) > 10).any(axis=-1).sum(axis=(1, 2))


@pytest.mark.parametrize("cls", EVENT_CLASSES)
def test_event_draws_every_frame_of_its_window_only(cls: str) -> None:
    for scene in SCENES:
        base = _clip(1, scene=scene)
        frames = base.copy()
        render_event(cls, frames, 10, 30, np.random.default_rng(2), scene_layout(scene))
        changed = _changed_pixels(frames, base)
        assert (changed[:10] == 0).all() and (changed[30:] == 0).all()
        assert (changed[10:30] > 60).all(), (scene, changed[10:30])


@pytest.mark.parametrize("cls", EVENT_CLASSES)
def test_event_depends_on_rng(cls: str) -> None:
    base = _clip(1)
    runs = []
    for seed in (7, 7, 8):
        frames = base.copy()
        render_event(cls, frames, 5, 35, np.random.default_rng(seed))
        runs.append(frames)
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_unknown_event_class_names_it_and_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="vandalism") as err:
        render_event("vandalism", _clip(0, 8), 0, 8, np.random.default_rng(0))
    assert all(c in str(err.value) for c in EVENT_CLASSES)


def test_event_window_must_fit() -> None:
    with pytest.raises(ValueError, match="window"):
        render_event("running", _clip(0, 8), 4, 9, np.random.default_rng(0))


def test_generic_anomaly_draws_inside_window() -> None:
    base = _clip(0, 20)
    frames = base.copy()
    render_generic_anomaly(frames, 5, 15, np.random.default_rng(0))
    changed = _changed_pixels(frames, base)
    assert (changed[:5] == 0).all() and (changed[15:] == 0).all()
    assert (changed[5:15] > 60).all()

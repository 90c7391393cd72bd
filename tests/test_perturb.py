"""The offline "perturb" synthesis backend."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from synthvad.render import EVENT_CLASSES, render_background
from synthvad.synthesize.perturb import render_clip


def _init_image(height: int = 121, width: int = 161) -> np.ndarray:
    """An odd-sized frame, as a real video might give."""
    bg = render_background("street", 162, 122, np.random.default_rng(9))
    return np.ascontiguousarray(bg[:height, :width])


def _large_change_per_frame(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pixels per frame that differ by more than sensor noise and flicker can explain."""
    return (np.abs(a.astype(np.int16) - b.astype(np.int16)) > 40).any(axis=-1).sum(axis=(1, 2))


@pytest.mark.parametrize("init", [True, False])
def test_requested_length_and_even_size(init: bool) -> None:
    image = _init_image() if init else None
    clip = render_clip("running", image, "a busy street", 17, np.random.default_rng(0), True)
    assert clip.dtype == np.uint8 and clip.ndim == 4 and clip.shape[0] == 17 and clip.shape[3] == 3
    assert clip.shape[1] % 2 == 0 and clip.shape[2] % 2 == 0
    if init:
        assert clip.shape[1:3] == (120, 160)


def test_init_image_is_the_background() -> None:
    image = _init_image()
    image.setflags(write=False)  # as np.asarray(PIL image) gives; must never be drawn on
    clip = render_clip("normal", image, None, 8, np.random.default_rng(0), False)
    still = np.median(clip.astype(np.float32), axis=0)  # removes the moving people
    assert np.abs(still - image[:120, :160]).mean() < 6
    assert not np.array_equal(clip[0], clip[1])  # noise: frames are not identical copies


@pytest.mark.parametrize("cls", EVENT_CLASSES)
def test_abnormal_clip_shows_the_event_in_most_frames(cls: str) -> None:
    image = _init_image()
    normal = render_clip(cls, image, None, 32, np.random.default_rng(1), False)
    abnormal = render_clip(cls, image, None, 32, np.random.default_rng(1), True)
    changed = _large_change_per_frame(abnormal, normal)
    assert (changed > 30).mean() >= 0.75, changed


def test_text_prompt_picks_the_scene() -> None:
    rng = np.random.default_rng(0)
    street = render_clip("fighting", None, "a street", 4, rng, True)
    hallway = render_clip("fighting", None, "an office hallway", 4, np.random.default_rng(0), True)
    assert np.abs(street.astype(float) - hallway.astype(float)).mean() > 20


def test_deterministic_given_rng() -> None:
    a = render_clip("explosion", None, "plaza", 16, np.random.default_rng(5), True)
    b = render_clip("explosion", None, "plaza", 16, np.random.default_rng(5), True)
    c = render_clip("explosion", None, "plaza", 16, np.random.default_rng(6), True)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_unknown_class_warns_and_draws_a_generic_anomaly(caplog: pytest.LogCaptureFixture) -> None:
    image = _init_image()
    normal = render_clip("vandalism", image, None, 24, np.random.default_rng(2), False)
    with caplog.at_level(logging.WARNING, logger="synthvad.synthesize.perturb"):
        abnormal = render_clip("vandalism", image, None, 24, np.random.default_rng(2), True)
    assert any("vandalism" in r.getMessage() for r in caplog.records)
    assert (_large_change_per_frame(abnormal, normal) > 30).mean() >= 0.75


def test_bad_init_image_is_rejected() -> None:
    with pytest.raises(ValueError, match="init_image"):
        render_clip(
            "running", np.zeros((120, 160), np.uint8), None, 4, np.random.default_rng(0), True
        )

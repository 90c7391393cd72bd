"""Numpy-only drawing shared by the demo dataset and the offline "perturb" synthesis backend.

`scenes` draws fixed-camera backgrounds, `actors` the people, cars and their
normal motion, `events` the rule-based anomalies drawn over a time window.
"""

from synthvad.render.actors import (
    SceneLayout,
    apply_sensor_noise,
    render_normal_clip,
)
from synthvad.render.events import EVENT_CLASSES, render_event, render_generic_anomaly
from synthvad.render.scenes import SCENES, render_background, scene_from_text, scene_layout

__all__ = [
    "EVENT_CLASSES",
    "SCENES",
    "SceneLayout",
    "apply_sensor_noise",
    "render_background",
    "render_event",
    "render_generic_anomaly",
    "render_normal_clip",
    "scene_from_text",
    "scene_layout",
]

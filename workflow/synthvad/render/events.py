"""Rule-based anomaly events drawn over a time window of a clip.

Downstream features are random-weight CLIP embeddings averaged over 16-frame
segments, so each event must change the pixel statistics of *every* frame in
its window (big, saturated, moving shapes), not only tell a story over time.
All parameters come from the caller's rng, so seeds give distinct renderings.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from synthvad.render.actors import (
    CAR_PAINT,
    GENERIC_LAYOUT,
    REF_HEIGHT,
    RGB,
    STEP_RATE,
    WALK_SPEED,
    SceneLayout,
    draw_line,
    draw_person,
    draw_vehicle,
    fill_disc,
    fill_ellipse,
    fill_rect,
    hand_position,
    random_look,
    reflect,
)

EVENT_CLASSES = ("fighting", "explosion", "road_accident", "running", "falling", "throwing")

BLOOD: RGB = (190, 15, 20)
FIRE: tuple[RGB, ...] = ((255, 120, 20), (255, 60, 10), (255, 200, 60))
BRIGHT: tuple[RGB, ...] = (
    (255, 40, 40),
    (255, 220, 0),
    (0, 200, 255),
    (255, 0, 200),
    (60, 255, 60),
)

EventFn = Callable[[np.ndarray, np.random.Generator, SceneLayout], None]


def _near_ground(rng: np.random.Generator, layout: SceneLayout, height: int) -> float:
    """A feet row in the nearer half of the lowest walk band, so event figures are large."""
    lo, hi = max(layout.walk_bands, key=lambda band: band[1])
    return rng.uniform((lo + hi) / 2, hi) * height


def _figure_height(layout: SceneLayout, y: float, height: int) -> float:
    return max(float(layout.person_height(y, height)) * 1.15, 0.22 * height)


def _fighting(clip: np.ndarray, rng: np.random.Generator, layout: SceneLayout) -> None:
    """Two overlapping figures lunging and jittering every frame, red patches where they hit."""
    n, height, width = clip.shape[:3]
    y = _near_ground(rng, layout, height)
    h = _figure_height(layout, y, height)
    cx = rng.uniform(0.3, 0.7) * width
    looks = random_look(rng), random_look(rng)
    phase = rng.uniform(0, 2 * math.pi)
    spots = [  # blood that accumulates on the ground over the fight
        (cx + rng.normal(0, 0.25 * h), y + rng.normal(0, 0.04 * h), rng.uniform(0.02, 0.05) * h)
        for _ in range(int(rng.integers(4, 9)))
    ]
    for t in range(n):
        frame = clip[t]
        for k, (sx, sy, sr) in enumerate(spots):
            if k < (t + 1) * len(spots) / n:
                fill_ellipse(frame, sx, sy, 1.8 * sr, sr, BLOOD, opacity=0.85)
        gap = h * (0.12 + 0.1 * math.sin(1.7 * t + phase))
        for side, look in zip((-1, 1), looks, strict=True):
            jitter = rng.normal(0, 0.05 * h, 2)
            punch = 1.5 if (t + (side > 0)) % 3 == 0 else rng.uniform(0.3, 1.0)
            tilt = -side * rng.uniform(0.1, 0.35)  # leaning into the opponent
            draw_person(
                frame,
                cx + side * gap + jitter[0],
                y + abs(jitter[1]) * 0.3,
                h,
                look,
                tilt=tilt,
                stride=rng.uniform(-0.8, 0.8),
                arms=(-side * punch, -side * rng.uniform(0.5, 1.6)),
            )
        for _ in range(int(rng.integers(2, 5))):  # fresh hits flash red
            fill_disc(
                frame,
                cx + rng.normal(0, 0.12 * h),
                y - rng.uniform(0.5, 0.95) * h,
                rng.uniform(0.03, 0.07) * h,
                BLOOD,
                0.9,
            )


def _explosion(clip: np.ndarray, rng: np.random.Generator, layout: SceneLayout) -> None:
    """A fast-growing bright flash that lights the whole frame, then churning smoke and fire."""
    n, height, width = clip.shape[:3]
    cx = rng.uniform(0.25, 0.75) * width
    cy = rng.uniform(0.4, 0.8) * height
    radius = rng.uniform(0.28, 0.4) * min(width, height)
    n_flash = int(np.clip(round(0.25 * n), 1, 12))
    puffs = [
        (
            rng.uniform(0, 2 * math.pi),
            rng.uniform(0.1, 0.6),
            rng.uniform(0.3, 0.55),
            rng.uniform(60, 140),
        )
        for _ in range(int(rng.integers(8, 14)))
    ]  # angle, distance and size (in radii), gray level
    for t in range(n):
        frame = clip[t]
        if t < n_flash:
            p = (t + 1) / n_flash
            glare = 0.6 * (1 - p) + 0.15  # the flash washes out the whole image
            frame[...] = (frame + (255 - frame.astype(np.float32)) * glare).astype(np.uint8)
            r = radius * math.sqrt(p)
            fill_disc(frame, cx, cy, r * 1.15, (255, 90, 10), 0.8)
            fill_disc(frame, cx, cy, r, (255, 170, 40))
            fill_disc(frame, cx, cy, 0.7 * r, (255, 230, 120))
            fill_disc(frame, cx, cy, 0.4 * r, (255, 255, 245))
            continue
        age = (t - n_flash) / max(1, n - n_flash)
        fill_ellipse(
            frame, cx, cy + 0.3 * radius, 0.8 * radius, 0.25 * radius, (30, 25, 20), opacity=0.8
        )
        for angle, dist, size, gray in puffs:
            wobble = rng.normal(0, 0.04 * radius, 2)
            px = cx + math.cos(angle) * dist * radius * (1 + age) + wobble[0]
            py = (
                cy
                + math.sin(angle) * dist * radius
                - (t - n_flash) * 0.5
                - age * radius
                + wobble[1]
            )
            fill_disc(
                frame,
                px,
                py,
                size * radius * (1 + 0.6 * age),
                (gray, gray, gray),
                0.85 - 0.25 * age,
            )
        for _ in range(int(rng.integers(3, 7))):  # flickering fire at the base
            fill_disc(
                frame,
                cx + rng.normal(0, 0.25 * radius),
                cy + 0.2 * radius - rng.uniform(0, 0.4) * radius,
                rng.uniform(0.08, 0.2) * radius,
                FIRE[rng.integers(len(FIRE))],
                0.9,
            )


def _road_accident(clip: np.ndarray, rng: np.random.Generator, layout: SceneLayout) -> None:
    """Two cars drive into each other head-on, spin to a stop; debris flies, fire flickers."""
    n, height, width = clip.shape[:3]
    lanes = layout.lanes or GENERIC_LAYOUT.lanes
    y = lanes[rng.integers(len(lanes))] * height
    length = max(layout.vehicle_length(y, height), 0.3 * width)
    impact_x = rng.uniform(0.35, 0.65) * width
    t_hit = int(np.clip(round(rng.uniform(0.25, 0.4) * n), 1, max(1, n - 1)))
    colors = rng.choice(len(CAR_PAINT), 2, replace=False)
    spins = rng.uniform(0.15, 0.5, 2) * rng.choice([-1, 1], 2)
    # Debris: launched from the impact point with a velocity, under gravity, stopping on the road.
    n_debris = int(rng.integers(20, 40))
    vel = rng.normal(0, 1, (n_debris, 2)) * (height / REF_HEIGHT) * np.float64([3.0, 2.0])
    vel[:, 1] -= 2.0 * height / REF_HEIGHT
    rest_y = y + rng.uniform(-0.05, 0.05, n_debris) * height
    debris_color = rng.uniform(90, 230, (n_debris, 3))
    fire_x, fire_y = impact_x, y - 0.25 * length
    for t in range(n):
        frame = clip[t]
        if t >= t_hit:
            fill_ellipse(
                frame, fire_x, y + 0.02 * height, 0.3 * length, 0.06 * length, (150, 30, 15)
            )
        for side, color, spin in zip((-1, 1), colors, spins, strict=True):
            start = -0.3 * length if side < 0 else width + 0.3 * length  # already entering
            contact = impact_x + side * 0.5 * length
            if t < t_hit:
                x = start + (contact - start) * t / t_hit
                angle = 0.0
            else:
                settle = min(1.0, (t - t_hit) / 4)  # rebound and spin over ~4 frames
                x = contact + side * 0.15 * length * settle
                angle = spin * settle
            facing = 1 if side < 0 else -1
            draw_vehicle(frame, x, y, length, CAR_PAINT[color], facing=facing, angle=angle)
        if t < t_hit:
            continue
        dt = t - t_hit
        gravity = 0.35 * height / REF_HEIGHT
        xs = impact_x + vel[:, 0] * min(dt, 10)
        ys = np.minimum(fire_y + vel[:, 1] * dt + 0.5 * gravity * dt * dt, rest_y)
        for k in range(n_debris):
            fill_disc(frame, xs[k], ys[k], 0.012 * height + 0.5, tuple(debris_color[k]))
        for _ in range(int(rng.integers(3, 6))):
            fill_disc(
                frame,
                fire_x + rng.normal(0, 0.12 * length),
                fire_y - rng.uniform(0, 0.2) * length,
                rng.uniform(0.05, 0.12) * length,
                FIRE[rng.integers(len(FIRE))],
                0.9,
            )


def _running(clip: np.ndarray, rng: np.random.Generator, layout: SceneLayout) -> None:
    """A figure sprinting across at ~5x walking speed, leaving a fading trail."""
    n, height, width = clip.shape[:3]
    y = _near_ground(rng, layout, height)
    h = _figure_height(layout, y, height)
    speed = 5 * WALK_SPEED * (height / REF_HEIGHT) * rng.uniform(0.9, 1.3)
    direction = rng.choice([-1, 1])
    x0 = rng.uniform(0.05, 0.95) * width
    look = random_look(rng)
    phase = rng.uniform(0, 2 * math.pi)

    def x_at(t: int) -> float:
        return float(reflect(np.array([x0 + direction * speed * t]), 0.05 * width, 0.95 * width)[0])

    for t in range(n):
        frame = clip[t]
        heading = 1 if x_at(t + 1) >= x_at(t) else -1
        for lag in (4, 3, 2, 1):  # the trail: earlier positions, fainter with age
            stride = math.sin(phase + 2.5 * STEP_RATE * (t - lag))
            draw_person(
                frame,
                x_at(t - lag),
                y,
                h,
                look,
                tilt=0.25 * heading,
                stride=stride,
                opacity=0.5 - 0.1 * lag,
            )
        stride = math.sin(phase + 2.5 * STEP_RATE * t)
        arms = (1.2 * stride, -1.2 * stride)
        draw_person(frame, x_at(t), y, h, look, tilt=0.25 * heading, stride=stride, arms=arms)


def _falling(clip: np.ndarray, rng: np.random.Generator, layout: SceneLayout) -> None:
    """A walking figure tips over sideways, then lies still on the ground."""
    n, height, width = clip.shape[:3]
    y = _near_ground(rng, layout, height)
    h = _figure_height(layout, y, height) * 1.3
    look = random_look(rng)
    x0 = rng.uniform(0.3, 0.7) * width
    direction = rng.choice([-1, 1])
    t_fall = int(round(rng.uniform(0.1, 0.25) * n))
    n_fall = int(np.clip(round(0.12 * n), 2, 8))
    speed = WALK_SPEED * height / REF_HEIGHT
    for t in range(n):
        walked = min(t, t_fall)
        x = x0 + direction * speed * walked
        p = np.clip((t - t_fall) / n_fall, 0.0, 1.0)
        tilt = direction * (math.pi / 2) * p * p  # accelerating, like a toppling body
        stride = math.sin(STEP_RATE * walked) if t < t_fall else 0.3
        arms = (0.5 * stride, -0.5 * stride) if t < t_fall else (2.2 * p, 1.4 * p)
        if p > 0.5:
            fill_ellipse(
                clip[t],
                x + direction * 0.5 * h,
                y + 0.03 * h,
                0.55 * h,
                0.08 * h,
                (25, 25, 25),
                opacity=0.5,
            )
        draw_person(clip[t], x, y, h, look, tilt=tilt, stride=stride, arms=arms)


def _parabola(
    start: tuple[float, float], end: tuple[float, float], apex: float, steps: int
) -> np.ndarray:
    """[steps + 1, 2] points of a throw from `start` to `end`, rising `apex` px mid-flight."""
    p = np.linspace(0.0, 1.0, steps + 1)
    xs = start[0] + (end[0] - start[0]) * p
    ys = start[1] + (end[1] - start[1]) * p - 4 * apex * p * (1 - p)
    return np.stack([xs, ys], axis=1)


def _throwing(clip: np.ndarray, rng: np.random.Generator, layout: SceneLayout) -> None:
    """A figure repeatedly hurls objects that fly fast on a parabola, with trails."""
    n, height, width = clip.shape[:3]
    y = _near_ground(rng, layout, height)
    h = _figure_height(layout, y, height)
    side = rng.choice([-1, 1])  # which edge the thrower stands at; throws go the other way
    x = (0.5 + side * rng.uniform(0.3, 0.4)) * width
    tilt = -side * 0.1
    look = random_look(rng)
    color = BRIGHT[rng.integers(len(BRIGHT))]
    size = max(2.0, 0.035 * height)
    windup = 3  # frames spent swinging the arm back before release
    release_arm = -side * 1.4
    t = 0
    while t < n:
        flight = int(rng.integers(7, 13))
        land = ((0.5 - side * rng.uniform(0.1, 0.45)) * width, y + rng.uniform(-0.1, 0.05) * height)
        path = _parabola(
            hand_position(x, y, h, tilt, release_arm), land, rng.uniform(0.25, 0.5) * height, flight
        )
        for k in range(min(windup + flight, n - t)):
            frame = clip[t + k]
            arm = -side * (2.8 - 0.4 * k) if k < windup else release_arm  # back, then forward
            draw_person(frame, x, y, h, look, tilt=tilt, stride=0.4, arms=(arm, side * 0.3))
            if k < windup:
                fill_disc(frame, *hand_position(x, y, h, tilt, arm), size, color)
                continue
            j = k - windup + 1  # the object is already one step out of the hand
            for lag in (4, 3, 2, 1):  # trail segments fade behind the object
                if j - lag >= 0:
                    draw_line(
                        frame,
                        *path[j - lag],
                        *path[j - lag + 1],
                        1.2 * size,
                        color,
                        0.2 * (5 - lag),
                    )
            fill_disc(frame, *path[j], size, color)
            if j == flight:  # impact: a burst of shards
                for _ in range(6):
                    shard = (
                        land[0] + rng.normal(0, 3 * size),
                        land[1] - abs(rng.normal(0, 2 * size)),
                    )
                    fill_disc(frame, *shard, 0.6 * size, color)
        t += windup + flight


def _check_window(frames: np.ndarray, start: int, end: int) -> None:
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [T, H, W, 3], got {frames.shape} {frames.dtype}")
    if not 0 <= start < end <= len(frames):
        raise ValueError(f"event window [{start}, {end}) is not inside {len(frames)} frames")


def render_generic_anomaly(
    frames: np.ndarray,
    start: int,
    end: int,
    rng: np.random.Generator,
    layout: SceneLayout | None = None,
) -> None:
    """A fast object bouncing around with a trail: the fallback for unknown event classes."""
    _check_window(frames, start, end)
    clip = frames[start:end]
    n, height, width = clip.shape[:3]
    color = BRIGHT[rng.integers(len(BRIGHT))]
    half = rng.uniform(0.04, 0.07) * height
    speed = rng.uniform(6, 9) * height / REF_HEIGHT
    angle = rng.uniform(0, 2 * math.pi)
    t = np.arange(-4, n, dtype=np.float64)
    xs = reflect(rng.uniform(0.2, 0.8) * width + speed * math.cos(angle) * t, half, width - half)
    ys = reflect(rng.uniform(0.2, 0.8) * height + speed * math.sin(angle) * t, half, height - half)
    for i in range(n):
        for lag in (4, 3, 2, 1, 0):
            k = i + 4 - lag
            fill_rect(
                clip[i], xs[k], ys[k], half, half, color, angle=0.3 * k, opacity=1.0 - 0.18 * lag
            )


_EVENTS: dict[str, EventFn] = {
    "fighting": _fighting,
    "explosion": _explosion,
    "road_accident": _road_accident,
    "running": _running,
    "falling": _falling,
    "throwing": _throwing,
}


def render_event(
    cls: str,
    frames: np.ndarray,
    start: int,
    end: int,
    rng: np.random.Generator,
    layout: SceneLayout | None = None,
) -> None:
    """Draw event `cls` in place on uint8 [T, H, W, 3] `frames` over frames [start, end).

    `layout` (from `scene_layout`) puts figures on the walkway and cars on a lane;
    without it a generic layout is used.
    """
    if cls not in _EVENTS:
        raise ValueError(f"unknown event class {cls!r}; valid classes: {', '.join(EVENT_CLASSES)}")
    _check_window(frames, start, end)
    _EVENTS[cls](frames[start:end], rng, layout or GENERIC_LAYOUT)

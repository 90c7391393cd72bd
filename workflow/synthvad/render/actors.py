"""Numpy drawing primitives, people and vehicles, and the normal motion of a clip.

Every shape is drawn in place on a uint8 [H, W, 3] frame, touching only its own
bounding box, with a one-pixel soft edge (coverage from a signed distance) so
small figures at 160x120 do not look jagged. Coordinates are pixel units with
(x, y) = (column, row); a figure's anchor is where it touches the ground.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

RGB = tuple[float, float, float]

# Reference frame height: speeds and sizes are given for 120-pixel-high frames and scaled.
REF_HEIGHT = 120.0
WALK_SPEED = 1.0  # px/frame at REF_HEIGHT
DRIVE_SPEED = 2.0
STEP_RATE = 0.4  # leg-swing phase per frame of walking (about one stride per second at 16 fps)

CLOTHES: tuple[RGB, ...] = (
    (200, 40, 40),
    (40, 70, 170),
    (230, 200, 60),
    (40, 140, 70),
    (120, 60, 150),
    (230, 130, 40),
    (30, 30, 35),
    (235, 235, 235),
    (90, 160, 200),
    (150, 100, 60),
)
PANTS: tuple[RGB, ...] = ((40, 45, 70), (30, 30, 30), (100, 90, 70), (70, 80, 90), (150, 140, 120))
SKIN: tuple[RGB, ...] = ((235, 200, 170), (200, 150, 110), (150, 100, 70), (95, 65, 45))
CAR_PAINT: tuple[RGB, ...] = (
    (190, 30, 30),
    (30, 60, 160),
    (220, 220, 220),
    (40, 40, 45),
    (230, 190, 40),
    (60, 130, 80),
    (150, 150, 160),
)


@dataclass(frozen=True)
class SceneLayout:
    """Where actors may be in a fixed-camera scene and how big they look there.

    Bands and lanes are fractions of the frame height: `walk_bands` bound where
    people's feet go, `lanes` are the ground rows of vehicles (empty: none).
    Sizes shrink linearly towards `horizon`, giving a cheap perspective.
    """

    walk_bands: tuple[tuple[float, float], ...]
    lanes: tuple[float, ...]
    horizon: float
    person_near: float  # person height at the bottom edge, as a fraction of frame height

    def depth_scale(self, y: float | np.ndarray, height: int) -> float | np.ndarray:
        """1 at the bottom edge, shrinking towards the horizon (floored so nobody vanishes)."""
        return np.clip((np.asarray(y) / height - self.horizon) / (1.0 - self.horizon), 0.15, 1.0)

    def person_height(self, y: float | np.ndarray, height: int) -> float | np.ndarray:
        return self.person_near * height * self.depth_scale(y, height)

    def vehicle_length(self, y: float, height: int) -> float:
        return 2.0 * float(self.person_height(y, height))


GENERIC_LAYOUT = SceneLayout(
    walk_bands=((0.45, 0.97),), lanes=(0.65, 0.85), horizon=0.15, person_near=0.32
)


# --- primitives -----------------------------------------------------------------------------

Box = tuple[int, int, int, int]  # x0, x1, y0, y1 (half-open)


def _box(frame: np.ndarray, x_min: float, x_max: float, y_min: float, y_max: float) -> Box | None:
    """Integer bounding box clipped to the frame, or None when nothing is visible."""
    h, w = frame.shape[:2]
    x0, x1 = max(0, math.floor(x_min)), min(w, math.ceil(x_max) + 1)
    y0, y1 = max(0, math.floor(y_min)), min(h, math.ceil(y_max) + 1)
    if x0 >= x1 or y0 >= y1:
        return None
    return x0, x1, y0, y1


def _grid(box: Box) -> tuple[np.ndarray, np.ndarray]:
    x0, x1, y0, y1 = box
    return (
        np.arange(x0, x1, dtype=np.float32)[None, :],
        np.arange(y0, y1, dtype=np.float32)[:, None],
    )


def blend(frame: np.ndarray, box: Box, coverage: np.ndarray, color: RGB, opacity: float) -> None:
    """Alpha-blend `color` into the box region with per-pixel coverage in [0, 1]."""
    x0, x1, y0, y1 = box
    alpha = np.clip(coverage, 0.0, 1.0)[..., None] * np.float32(opacity)
    region = frame[y0:y1, x0:x1]
    out = region.astype(np.float32)
    out += (np.asarray(color, dtype=np.float32) - out) * alpha
    region[...] = (out + 0.5).astype(np.uint8)


def fill_disc(
    frame: np.ndarray, cx: float, cy: float, r: float, color: RGB, opacity: float = 1.0
) -> None:
    box = _box(frame, cx - r - 1, cx + r + 1, cy - r - 1, cy + r + 1)
    if box is None:
        return
    xx, yy = _grid(box)
    dist = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
    blend(frame, box, r + 0.5 - dist, color, opacity)


def fill_ellipse(
    frame: np.ndarray,
    cx: float,
    cy: float,
    rx: float,
    ry: float,
    color: RGB,
    angle: float = 0.0,
    opacity: float = 1.0,
) -> None:
    """Ellipse with semi-axes rx (along `angle`) and ry (perpendicular)."""
    ext = max(rx, ry) + 1
    box = _box(frame, cx - ext, cx + ext, cy - ext, cy + ext)
    if box is None or rx <= 0 or ry <= 0:
        return
    xx, yy = _grid(box)
    c, s = math.cos(angle), math.sin(angle)
    u = (xx - cx) * c + (yy - cy) * s
    v = -(xx - cx) * s + (yy - cy) * c
    q = np.sqrt((u / rx) ** 2 + (v / ry) ** 2)
    # (1 - q) * min radius approximates the signed distance well enough for a soft edge.
    blend(frame, box, (1.0 - q) * min(rx, ry) + 0.5, color, opacity)


def fill_rect(
    frame: np.ndarray,
    cx: float,
    cy: float,
    half_w: float,
    half_h: float,
    color: RGB,
    angle: float = 0.0,
    opacity: float = 1.0,
) -> None:
    """Rectangle centred at (cx, cy), rotated by `angle` (radians, clockwise on screen)."""
    ext = math.hypot(half_w, half_h) + 1
    box = _box(frame, cx - ext, cx + ext, cy - ext, cy + ext)
    if box is None:
        return
    xx, yy = _grid(box)
    c, s = math.cos(angle), math.sin(angle)
    u = (xx - cx) * c + (yy - cy) * s
    v = -(xx - cx) * s + (yy - cy) * c
    dist = np.maximum(np.abs(u) - half_w, np.abs(v) - half_h)
    blend(frame, box, 0.5 - dist, color, opacity)


def draw_line(
    frame: np.ndarray,
    x0: float,
    y0: float,
    x1: float,
    y1: float,
    width: float,
    color: RGB,
    opacity: float = 1.0,
) -> None:
    """Thick segment with round caps (a capsule)."""
    r = width / 2
    box = _box(
        frame, min(x0, x1) - r - 1, max(x0, x1) + r + 1, min(y0, y1) - r - 1, max(y0, y1) + r + 1
    )
    if box is None:
        return
    xx, yy = _grid(box)
    dx, dy = x1 - x0, y1 - y0
    length2 = dx * dx + dy * dy
    if length2 < 1e-9:
        t = np.zeros_like(xx + yy)
    else:
        t = np.clip(((xx - x0) * dx + (yy - y0) * dy) / length2, 0.0, 1.0)
    dist = np.sqrt((xx - x0 - t * dx) ** 2 + (yy - y0 - t * dy) ** 2) - r
    blend(frame, box, 0.5 - dist, color, opacity)


def _local_to_frame(
    x: float, y: float, tilt: float
) -> Callable[[float, float], tuple[float, float]]:
    """Map body coordinates (u right, v up, origin at the anchor) to frame pixels.

    `tilt` rotates the body clockwise on screen about the anchor: pi/2 lays an
    upright figure down with its head to the right.
    """
    c, s = math.cos(tilt), math.sin(tilt)

    def to_frame(u: float, v: float) -> tuple[float, float]:
        return x + u * c + v * s, y + u * s - v * c

    return to_frame


def shade(color: RGB, factor: float) -> RGB:
    return (
        min(255.0, color[0] * factor),
        min(255.0, color[1] * factor),
        min(255.0, color[2] * factor),
    )


# --- people ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Look:
    clothes: RGB
    pants: RGB
    skin: RGB


def random_look(rng: np.random.Generator) -> Look:
    jitter = rng.uniform(0.85, 1.15)
    return Look(
        clothes=shade(CLOTHES[rng.integers(len(CLOTHES))], jitter),
        pants=PANTS[rng.integers(len(PANTS))],
        skin=SKIN[rng.integers(len(SKIN))],
    )


def draw_person(
    frame: np.ndarray,
    x: float,
    y: float,
    height: float,
    look: Look,
    *,
    tilt: float = 0.0,
    stride: float = 0.0,
    arms: tuple[float, float] | None = None,
    opacity: float = 1.0,
) -> None:
    """A person standing at (x, y) (feet), `height` pixels tall.

    `stride` in [-1, 1] spreads the legs; `arms` are the two arm angles from
    hanging down (radians, positive towards +x); by default they swing against
    the legs as in walking.
    """
    h = height
    to_frame = _local_to_frame(x, y, tilt)
    if arms is None:
        arms = (0.5 * stride, -0.5 * stride)
    limb = max(1.2, 0.11 * h)
    hip = to_frame(0.0, 0.47 * h)
    for foot_u in (0.16 * h * stride, -0.16 * h * stride):
        foot = to_frame(foot_u, 0.0)
        draw_line(frame, *hip, *foot, limb, look.pants, opacity)
    shoulder_uv = (0.0, 0.78 * h)
    shoulder = to_frame(*shoulder_uv)
    hands = [
        to_frame(0.32 * h * math.sin(a), shoulder_uv[1] - 0.32 * h * math.cos(a)) for a in arms
    ]
    sleeve = shade(look.clothes, 0.8)
    draw_line(frame, *shoulder, *hands[1], 0.8 * limb, sleeve, opacity)
    torso = to_frame(0.0, 0.64 * h)
    fill_ellipse(frame, *torso, 0.12 * h, 0.2 * h, look.clothes, angle=tilt, opacity=opacity)
    draw_line(frame, *shoulder, *hands[0], 0.8 * limb, sleeve, opacity)
    head = to_frame(0.0, 0.91 * h)
    fill_disc(frame, *head, max(1.0, 0.085 * h), look.skin, opacity)


def hand_position(
    x: float, y: float, height: float, tilt: float, arm: float
) -> tuple[float, float]:
    """Where a hand of `draw_person` ends up (for objects held or thrown)."""
    to_frame = _local_to_frame(x, y, tilt)
    return to_frame(0.32 * height * math.sin(arm), 0.78 * height - 0.32 * height * math.cos(arm))


# --- vehicles -------------------------------------------------------------------------------

GLASS: RGB = (150, 190, 220)
TYRE: RGB = (25, 25, 28)


def draw_vehicle(
    frame: np.ndarray,
    x: float,
    y: float,
    length: float,
    color: RGB,
    *,
    facing: int = 1,
    angle: float = 0.0,
    opacity: float = 1.0,
) -> None:
    """A car seen from the side, wheels on (x, y), front towards `facing` (+1 right, -1 left)."""
    L = length
    to_frame = _local_to_frame(x, y, angle)

    def part(u: float, v: float) -> tuple[float, float]:
        return to_frame(u * facing, v)

    fill_rect(
        frame, *part(-0.05 * L, 0.42 * L), 0.27 * L, 0.11 * L, shade(color, 0.85), angle, opacity
    )
    for u in (-0.17 * L, 0.07 * L):
        fill_rect(frame, *part(u, 0.42 * L), 0.1 * L, 0.065 * L, GLASS, angle, opacity)
    fill_rect(frame, *part(0.0, 0.22 * L), 0.5 * L, 0.13 * L, color, angle, opacity)
    fill_disc(frame, *part(0.47 * L, 0.26 * L), max(0.8, 0.035 * L), (250, 230, 150), opacity)
    for u in (-0.32 * L, 0.32 * L):
        fill_disc(frame, *part(u, 0.09 * L), max(1.0, 0.09 * L), TYRE, opacity)
        fill_disc(frame, *part(u, 0.09 * L), max(0.5, 0.04 * L), (150, 150, 150), opacity)


# --- normal motion --------------------------------------------------------------------------


def reflect(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Fold unbounded positions into [lo, hi] as if bouncing off both ends."""
    span = hi - lo
    if span <= 0:
        return np.full_like(values, lo, dtype=np.float64)
    m = np.mod(values - lo, 2 * span)
    return lo + np.where(m > span, 2 * span - m, m)


@dataclass(frozen=True)
class Track:
    """One actor's per-frame state; `draw(frame, t)` renders it at frame t."""

    ground_y: np.ndarray  # [T], used to paint far actors first
    draw: Callable[[np.ndarray, int], None]


def walker_track(
    rng: np.random.Generator, layout: SceneLayout, width: int, height: int, n_frames: int
) -> Track:
    """A person walking ~1 px/frame (some stand), bouncing inside one walk band."""
    scale = height / REF_HEIGHT
    lo, hi = layout.walk_bands[rng.integers(len(layout.walk_bands))]
    lo, hi = lo * height, hi * height
    t = np.arange(n_frames)
    speed = 0.0 if rng.random() < 0.15 else WALK_SPEED * scale * rng.uniform(0.7, 1.3)
    heading = rng.uniform(-0.35, 0.35) + (math.pi if rng.random() < 0.5 else 0.0)
    xs = reflect(
        rng.uniform(0.05, 0.95) * width + speed * math.cos(heading) * t, 0.03 * width, 0.97 * width
    )
    ys = reflect(rng.uniform(lo, hi) + 0.5 * speed * math.sin(heading) * t, lo, hi)
    heights = layout.person_height(ys, height)
    strides = np.sin(rng.uniform(0, 2 * math.pi) + STEP_RATE * t) * (1.0 if speed else 0.0)
    look = random_look(rng)

    def draw(frame: np.ndarray, i: int) -> None:
        draw_person(frame, xs[i], ys[i], heights[i], look, stride=strides[i])

    return Track(ground_y=ys, draw=draw)


def driver_track(
    rng: np.random.Generator, layout: SceneLayout, width: int, height: int, n_frames: int
) -> Track:
    """A car driving ~2 px/frame along a lane, wrapping around past the frame edges."""
    lanes = layout.lanes or GENERIC_LAYOUT.lanes
    lane = int(rng.integers(len(lanes)))
    y = lanes[lane] * height
    facing = 1 if lane % 2 else -1  # opposite directions in neighbouring lanes
    length = layout.vehicle_length(y, height)
    speed = DRIVE_SPEED * (height / REF_HEIGHT) * rng.uniform(0.8, 1.25)
    period = width + 2 * length
    xs = np.mod(rng.uniform(0, period) + facing * speed * np.arange(n_frames), period) - length
    color = CAR_PAINT[rng.integers(len(CAR_PAINT))]

    def draw(frame: np.ndarray, i: int) -> None:
        draw_vehicle(frame, xs[i], y, length, color, facing=facing)

    return Track(ground_y=np.full(n_frames, y), draw=draw)


def apply_sensor_noise(
    frames: np.ndarray, rng: np.random.Generator, noise: int = 2, flicker: float = 0.015
) -> None:
    """In place: slow global illumination flicker plus small per-pixel noise.

    Uniform integer noise (not Gaussian) because drawing it is ~5x cheaper and
    at this amplitude the difference is invisible.
    """
    n = len(frames)
    t = np.arange(n)
    gain = (
        1.0
        + flicker * np.sin(2 * math.pi * t / rng.uniform(24, 64) + rng.uniform(0, 2 * math.pi))
        + rng.normal(0.0, flicker / 8, n)
    ).astype(np.float32)
    chunk = 32  # bounds the float32 copy for long clips
    for start in range(0, n, chunk):
        block = frames[start : start + chunk].astype(np.float32)
        block *= gain[start : start + chunk, None, None, None]
        block += rng.integers(-noise, noise + 1, block.shape, dtype=np.int8)
        np.clip(block, 0, 255, out=block)
        frames[start : start + chunk] = (block + 0.5).astype(np.uint8)


def render_normal_clip(
    background: np.ndarray,
    n_frames: int,
    rng: np.random.Generator,
    n_people: int,
    n_vehicles: int,
    layout: SceneLayout | None = None,
    *,
    sensor_noise: bool = True,
) -> np.ndarray:
    """Background plus walking people and driving cars: uint8 [T, H, W, 3].

    With `sensor_noise=False` the caller can draw events first and call
    `apply_sensor_noise` afterwards, so that events get the same flicker.
    """
    if background.ndim != 3 or background.shape[2] != 3 or background.dtype != np.uint8:
        raise ValueError(
            f"background must be uint8 [H, W, 3], got {background.shape} {background.dtype}"
        )
    layout = layout or GENERIC_LAYOUT
    height, width = background.shape[:2]
    frames = np.repeat(background[None], n_frames, axis=0)
    tracks = [walker_track(rng, layout, width, height, n_frames) for _ in range(n_people)]
    tracks += [driver_track(rng, layout, width, height, n_frames) for _ in range(n_vehicles)]
    if tracks:
        ground = np.stack([tr.ground_y for tr in tracks])
        for i in range(n_frames):
            for k in np.argsort(ground[:, i], kind="stable"):  # far (higher) actors first
                tracks[k].draw(frames[i], i)
    if sensor_noise:
        apply_sensor_noise(frames, rng)
    return frames

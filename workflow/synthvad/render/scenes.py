"""Fixed-camera backgrounds (street, plaza, corridor) and mapping free text to a scene."""

from __future__ import annotations

import hashlib
import re

import numpy as np

from synthvad.render.actors import RGB, SceneLayout, fill_disc, fill_ellipse, shade

SCENES = ("street", "plaza", "corridor")

# Row fractions shared by the street drawing and its layout.
_STREET_SIDEWALK_TOP, _STREET_ROAD_TOP, _STREET_ROAD_BOTTOM = 0.38, 0.46, 0.80
_CORRIDOR_VANISH_Y, _CORRIDOR_BACK = 0.45, 0.3  # vanishing row, back-wall scale

_LAYOUTS = {
    "street": SceneLayout(
        walk_bands=((0.40, 0.455), (0.83, 0.98)), lanes=(0.62, 0.78), horizon=0.1, person_near=0.3
    ),
    "plaza": SceneLayout(walk_bands=((0.34, 0.98),), lanes=(), horizon=0.05, person_near=0.28),
    "corridor": SceneLayout(
        walk_bands=((0.68, 0.98),), lanes=(), horizon=_CORRIDOR_VANISH_Y, person_near=0.55
    ),
}

_KEYWORDS = {
    "street": {
        "street", "road", "avenue", "highway", "traffic", "intersection", "crossing", "crosswalk",
        "car", "parking", "lane", "boulevard", "alley", "sidewalk", "city", "downtown", "bridge",
        "junction", "roadside", "motorway", "freeway", "drive", "driveway", "gas", "petrol",
    },
    "plaza": {
        "plaza", "square", "park", "garden", "fountain", "campus", "market", "courtyard",
        "playground", "outdoor", "outdoors", "yard", "beach", "stadium", "lawn", "field", "piazza",
        "promenade", "pedestrian", "open", "walkway", "zone",
    },
    "corridor": {
        "corridor", "hallway", "hall", "office", "station", "platform", "subway", "metro",
        "indoor", "indoors", "building", "lobby", "mall", "shop", "store", "school", "hospital",
        "airport", "elevator", "stair", "stairs", "staircase", "room", "tunnel", "train",
        "warehouse", "factory", "classroom", "entrance", "passage", "library", "prison",
        "restaurant", "bank", "atm", "supermarket",
    },
}  # fmt: skip


def _check_scene(scene: str) -> None:
    if scene not in SCENES:
        raise ValueError(f"unknown scene {scene!r}; valid scenes: {', '.join(SCENES)}")


def scene_layout(scene: str) -> SceneLayout:
    """Where people walk and cars drive in backgrounds of `scene`."""
    _check_scene(scene)
    return _LAYOUTS[scene]


def scene_from_text(text: str) -> str:
    """The scene whose keywords best match free text; a stable hash decides when none match."""
    words = re.findall(r"[a-z]+", text.lower())
    scores = {
        scene: sum(w in kws or w.rstrip("s") in kws for w in words)
        for scene, kws in _KEYWORDS.items()
    }
    best = max(SCENES, key=lambda s: scores[s])  # ties go to the earlier scene
    if scores[best] > 0:
        return best
    # Python's hash() is salted per process; sha256 keeps the fallback reproducible.
    digest = hashlib.sha256(text.strip().lower().encode()).digest()
    return SCENES[digest[0] % len(SCENES)]


def render_background(scene: str, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A fixed-camera background of `scene`: uint8 [height, width, 3]."""
    _check_scene(scene)
    draw = {"street": _street, "plaza": _plaza, "corridor": _corridor}[scene]
    img = draw(width, height, rng)
    # Static grain so flat areas are not perfectly uniform (cameras never are).
    img += rng.normal(0.0, 3.0, (height, width, 1)).astype(np.float32)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def _jitter(color: RGB, rng: np.random.Generator, amount: float = 0.08) -> np.ndarray:
    return np.asarray(color, np.float32) * np.float32(rng.uniform(1 - amount, 1 + amount))


def _rows(height: int, top: float, bottom: float) -> slice:
    return slice(round(top * height), round(bottom * height))


def _street(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    img = np.zeros((height, width, 3), np.float32)
    ys = np.arange(height, dtype=np.float32)[:, None, None] / height
    sky_top, sky_bottom = np.float32([140, 175, 215]), np.float32([200, 210, 225])
    img[:] = sky_top + (sky_bottom - sky_top) * np.clip(ys / _STREET_SIDEWALK_TOP, 0, 1)
    ground = round(_STREET_SIDEWALK_TOP * height)
    x = -int(rng.integers(0, 10))
    palette: tuple[RGB, ...] = ((150, 80, 60), (190, 175, 150), (120, 120, 130), (170, 140, 110))
    while x < width:
        block_w = int(rng.integers(max(4, int(0.12 * width)), max(5, int(0.28 * width))))
        top = round(rng.uniform(0.02, 0.22) * height)
        x0, x1 = max(0, x), min(width, x + block_w)
        img[top:ground, x0:x1] = _jitter(palette[rng.integers(len(palette))], rng)
        _windows(img, rng, x0, x1, top, ground, width)
        x += block_w + int(rng.integers(0, 4))
    img[_rows(height, _STREET_SIDEWALK_TOP, _STREET_ROAD_TOP)] = (165, 160, 155)
    img[_rows(height, _STREET_ROAD_BOTTOM, 1.0)] = (175, 170, 160)
    seam = np.arange(width) % max(6, round(0.08 * width)) == 0  # paving slab joints
    for top, bottom in ((_STREET_SIDEWALK_TOP, _STREET_ROAD_TOP), (_STREET_ROAD_BOTTOM, 1.0)):
        img[_rows(height, top, bottom), seam] *= 0.8
    img[_rows(height, _STREET_ROAD_TOP, _STREET_ROAD_BOTTOM)] = _jitter((72, 74, 78), rng, 0.1)
    line = max(1, round(height / 120))
    for frac in (_STREET_ROAD_TOP + 0.02, _STREET_ROAD_BOTTOM - 0.02):
        row = round(frac * height)
        img[row : row + line] = (215, 215, 205)
    row = round(0.66 * height)
    dash = np.arange(width) % max(8, round(0.11 * width)) < max(4, round(0.06 * width))
    img[row : row + line, dash] = (230, 210, 90)
    curb = round(_STREET_ROAD_TOP * height)
    img[curb - line : curb] = (110, 110, 110)
    return img


def _windows(
    img: np.ndarray, rng: np.random.Generator, x0: int, x1: int, top: int, bottom: int, width: int
) -> None:
    """A grid of lit and dark windows on the facade img[top:bottom, x0:x1]."""
    step = max(4, round(0.045 * width))
    size = max(2, step // 2)
    ys = np.arange(top + step // 2, bottom - step, step)
    xs = np.arange(x0 + step // 2, x1 - size, step)
    lit = rng.random((len(ys), len(xs))) < 0.35
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            img[y : y + size, x : x + size] = (235, 215, 140) if lit[i, j] else (55, 65, 85)


def _plaza(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    img = np.zeros((height, width, 3), np.float32)
    img[:] = (200, 185, 150)
    yy, xx = np.mgrid[0:height, 0:width]
    tile = max(4, round(0.07 * width))
    checker = ((xx // tile + yy // tile) % 2).astype(bool)
    img[checker] = (185, 168, 136)
    img[(xx % tile == 0) | (yy % tile == 0)] = (145, 135, 118)
    # Hedge with a bumpy top behind the square, sky above it.
    hedge_top = (0.1 + 0.03 * np.sin(xx[0] / max(1.0, 0.05 * width))) * height
    hedge_bottom = round(0.3 * height)
    img[:hedge_bottom] = (165, 195, 225)
    hedge = (yy < hedge_bottom) & (yy >= hedge_top[None, :])
    img[hedge] = _jitter((45, 95, 50), rng)
    buf = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    _fountain(buf, rng, width, height)
    for _ in range(int(rng.integers(3, 6))):
        left = rng.random() < 0.5
        cx = rng.uniform(0.04, 0.22) * width if left else rng.uniform(0.78, 0.96) * width
        cy = rng.uniform(0.35, 0.9) * height
        r = rng.uniform(0.06, 0.09) * width
        ground = tuple(float(c) for c in buf[min(height - 1, int(cy)), min(width - 1, int(cx))])
        fill_disc(buf, cx + 0.25 * r, cy + 0.3 * r, r, shade(ground, 0.65), 0.8)  # shadow
        canopy = tuple(float(c) for c in _jitter((50, 120, 50), rng, 0.15))
        fill_disc(buf, cx, cy, r, canopy)
        fill_disc(buf, cx - 0.3 * r, cy - 0.3 * r, 0.5 * r, shade(canopy, 1.3), 0.7)
    return buf.astype(np.float32)


def _fountain(buf: np.ndarray, rng: np.random.Generator, width: int, height: int) -> None:
    cx = (0.5 + rng.uniform(-0.1, 0.1)) * width
    cy = 0.58 * height
    rx, ry = 0.17 * width, 0.1 * height
    fill_ellipse(buf, cx, cy + 0.02 * height, rx, ry, (120, 120, 125))  # basin wall
    fill_ellipse(buf, cx, cy, rx, ry, (170, 170, 175))  # rim
    fill_ellipse(buf, cx, cy, 0.85 * rx, 0.8 * ry, (70, 130, 200))  # water
    fill_disc(buf, cx, cy - 0.02 * height, 0.03 * width, (220, 235, 250))  # jet


def _corridor(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """One-point perspective: the back wall is the frame scaled about the vanishing point."""
    vx, vy = (0.5 + rng.uniform(-0.08, 0.08)) * width, _CORRIDOR_VANISH_Y * height
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    nx = np.where(xx < vx, (xx - vx) / vx, (xx - vx) / (width - vx))
    ny = np.where(yy < vy, (yy - vy) / vy, (yy - vy) / (height - vy))
    z = np.maximum(np.maximum(np.abs(nx), np.abs(ny)), 1e-3)  # 1 at the frame edge
    depth = 1.0 / z  # distance along the corridor, 1 at the camera's near plane
    wall_h = ny / np.maximum(np.abs(nx), 1e-3)  # -1 ceiling .. +1 floor, on the side walls
    lateral = nx / np.maximum(np.abs(ny), 1e-3)  # -1 left .. +1 right, on floor and ceiling

    back = z < _CORRIDOR_BACK
    floor = ~back & (ny >= np.abs(nx))
    ceiling = ~back & (-ny >= np.abs(nx))
    walls = ~back & ~floor & ~ceiling

    img = np.zeros((height, width, 3), np.float32)
    wall = _jitter((195, 188, 170), rng)
    img[walls] = wall
    img[back] = shade(tuple(wall), 0.75)
    img[ceiling] = (215, 215, 210)
    img[floor] = _jitter((125, 112, 100), rng)

    # Floor joints: equal steps in depth (so they crowd towards the back) and along the width.
    joint = (np.mod(depth * 1.5, 1.0) < 0.08 * depth) | (np.abs(np.mod(lateral * 2, 1.0)) < 0.05)
    img[floor & joint] *= 0.75
    lights = ceiling & (np.abs(lateral) < 0.15) & (np.mod(depth * 0.8, 1.0) < 0.3)
    img[lights] = (250, 250, 235)

    for side in (-1, 1):
        for d in rng.uniform(1.2, 1.0 / _CORRIDOR_BACK - 0.4, int(rng.integers(2, 4))):
            door = walls & (np.sign(nx) == side) & (np.abs(depth - d) < 0.22) & (wall_h > -0.4)
            frame = walls & (np.sign(nx) == side) & (np.abs(depth - d) < 0.27) & (wall_h > -0.48)
            img[frame & ~door] = (80, 60, 45)
            img[door] = _jitter((125, 85, 55), rng, 0.15)
    # Far surfaces are darker: a cheap depth cue that also separates the walls.
    img *= (0.55 + 0.45 * np.clip(z, 0, 1))[..., None]
    return img

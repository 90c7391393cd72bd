from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def default_config():
    from synthvad.config import load_config

    return load_config(ROOT / "config.yaml")


# Stage 4 with diffusers (tests/test_synthesize_*.py).
DIFFUSERS_KINDS = {  # checkpoint kind -> (tiny architecture, backend that loads it)
    "cogvideox": ("tiny-cogvideox", "cogvideox"),
    "wan2.1-i2v": ("tiny-wan2.1-i2v", "wan_i2v"),
    "wan2.2-i2v": ("tiny-wan2.2-i2v", "wan_i2v"),
    "wan-t2v": ("tiny-wan-t2v", "wan_t2v"),
}


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Each tiny pipeline saved as a diffusers folder, as `save_pretrained` writes it."""
    from .random_pipelines import build

    root = tmp_path_factory.mktemp("checkpoints")
    folders = {}
    for name, (arch, _) in DIFFUSERS_KINDS.items():
        build(arch, seed=0).save_pretrained(root / name)
        folders[name] = root / name
    return folders


@pytest.fixture(scope="session")
def prompts(tmp_path_factory) -> Path:
    """Clip prompt files as stage 3 writes them: two GV-VAD (text) and two PA-VAD (image)
    clips; returns their folder."""
    import numpy as np
    from PIL import Image

    from synthvad.prompts import PROMPT_COLUMNS, write_prompts

    root = tmp_path_factory.mktemp("prompts")
    rng = np.random.default_rng(0)
    image = root / "init.png"
    Image.fromarray(rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)).save(image)
    rows = [
        ("gvvad-fighting-000-abnormal", "gvvad", "fighting", 1, "a man starts a fight", None),
        ("gvvad-fighting-000-normal", "gvvad", "fighting", 0, "a man walks on the street", None),
        ("pavad-explosion-000", "pavad", "explosion", 1, "generate explosion behavior", str(image)),
        ("pavad-normal-000", "pavad", "normal", 0, "people walking, fixed camera", str(image)),
    ]
    rows = [dict(zip(PROMPT_COLUMNS, row, strict=False)) for row in rows]
    write_prompts(rows, [r["clip_id"] for r in rows], "test", root / "prompts.parquet", root)
    return root

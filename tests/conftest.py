from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def default_config():
    from synthvad.config import load_config

    return load_config(ROOT / "config.yaml")

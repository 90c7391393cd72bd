from synthvad import envs

from .conftest import ROOT


def test_conda_envs_match_pyproject_pins():
    versions = envs.pins()
    for group in envs.GROUPS:
        committed = (ROOT / "envs" / f"{group}.yaml").read_text()
        assert committed == envs.render(group, versions), (
            f"envs/{group}.yaml drifted from pyproject.toml: run `python -m synthvad.envs`"
        )


def test_every_env_package_is_pinned():
    versions = envs.pins()
    for group, names in envs.GROUPS.items():
        missing = [n for n in names if n not in versions]
        assert not missing, f"{group}: {missing} not pinned in pyproject.toml"

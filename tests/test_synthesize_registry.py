"""The stage-4 generator registry agrees with the config schema, and the synthesize package
keeps the import structure the Snakefile relies on (no torch at parse time, no cycles)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from synthvad.config import load_schema
from synthvad.synthesize import jobs, registry

PACKAGE = Path(registry.__file__).parent


def synthesize_schema() -> dict:
    return load_schema()["properties"]["synthesize"]


def test_schema_names_the_registered_generators():
    schema = synthesize_schema()
    assert schema["$defs"]["generator"]["enum"] == list(registry.GENERATORS)
    sections = schema["properties"]
    for name, spec in registry.GENERATORS.items():
        uses_diffusers_keys = sections[name].get("$ref", "").endswith("/diffusers_generator")
        assert uses_diffusers_keys == spec.is_diffusers, name


def test_runtime_keys_are_the_schemas_keys_from_device_on():
    keys = list(synthesize_schema()["$defs"]["diffusers_generator"]["properties"])
    assert list(jobs.RUNTIME_KEYS) == keys[keys.index("device") :]


@pytest.mark.parametrize("name", registry.diffusers_names())
def test_diffusers_specs_name_real_pipeline_classes(name):
    import diffusers

    spec = registry.diffusers_spec(name)
    assert hasattr(diffusers, spec.pipeline_class)
    assert spec.defaults.frames % spec.frame_stride == 1  # its own default passes the check


def test_image_to_video_generators_serve_only_pavad():
    for name, spec in registry.GENERATORS.items():
        assert ("gvvad" in spec.methods) == (not spec.image_to_video), name
    with pytest.raises(ValueError, match="unknown backend 'nope'"):
        registry.get("nope")


def test_parse_time_modules_do_not_import_torch():
    code = (
        "import sys; import synthvad.synthesize.jobs, synthvad.synthesize.gpu_plan; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _imports(path: Path) -> set[str]:
    """The synthvad.synthesize modules `path` imports, at any depth of the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "synthvad.synthesize":
                found |= {f"{node.module}.{alias.name}" for alias in node.names}
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {name for name in found if name.startswith("synthvad.synthesize.")}

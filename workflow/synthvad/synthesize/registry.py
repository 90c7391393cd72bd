"""Every stage-4 generator by name: the one place the workflow (jobs.py, the Snakefile),
the driver (run.py), the diffusers generator and the GPU plan look up what a generator is.

Each entry lives in its generator's module; the config schema's list of backends
(synthesize.$defs.generator) must name the same ones (tests/test_synthesize_registry.py).
"""

from __future__ import annotations

from synthvad.synthesize.cogvideox import COGVIDEOX
from synthvad.synthesize.perturb import PERTURB
from synthvad.synthesize.spec import DiffusersSpec, GeneratorSpec
from synthvad.synthesize.wan import WAN_I2V, WAN_T2V

GENERATORS: dict[str, GeneratorSpec] = {
    spec.name: spec for spec in (PERTURB, COGVIDEOX, WAN_I2V, WAN_T2V)
}


def get(name: str) -> GeneratorSpec:
    if name not in GENERATORS:
        raise ValueError(
            f"synthesize.backend: unknown backend {name!r} (known: {sorted(GENERATORS)})"
        )
    return GENERATORS[name]


def diffusers_spec(name: str) -> DiffusersSpec:
    """The pipeline facts of a diffusers generator; an error for any other."""
    spec = get(name).diffusers
    if spec is None:
        raise ValueError(f"{name} is not a diffusers generator")
    return spec


def diffusers_names() -> tuple[str, ...]:
    return tuple(name for name, spec in GENERATORS.items() if spec.is_diffusers)

"""The `script:` every rule calls, and how it picks the stage function it runs."""

import hashlib
from pathlib import Path
from types import SimpleNamespace

import pytest
from snakemake.iocontainers import Params

from synthvad import stages

SCRIPT = Path(__file__).parents[1] / "workflow" / "scripts" / "stage.py"
# Snakemake's `code` rerun trigger covers a script's path and text: editing this file
# reruns every job of every existing run, GPU clips included. Change it only on purpose.
SCRIPT_SHA256 = "8e47f220dfdd9ff2e542bf38577a47dc0073228dd0acaec1582bf721cc5c6a96"


def test_dispatch_script_is_unchanged():
    assert hashlib.sha256(SCRIPT.read_bytes()).hexdigest() == SCRIPT_SHA256


def _job(rule: str, **params) -> SimpleNamespace:
    return SimpleNamespace(rule=rule, params=Params(fromdict=params), threads=1, log=[])


def test_a_rule_runs_the_stage_its_params_name_else_its_own(monkeypatch):
    ran = []
    monkeypatch.setitem(stages.STAGES, "synthesize", lambda smk: ran.append(("s", smk.rule)))
    monkeypatch.setitem(stages.STAGES, "filter", lambda smk: ran.append(("f", smk.rule)))
    stages.run(_job("synthesize_batch_gvvad_0000_0004", stage="synthesize"))
    stages.run(_job("filter", thresholds={}))
    assert ran == [("s", "synthesize_batch_gvvad_0000_0004"), ("f", "filter")]


def test_unknown_stage_is_an_error_naming_the_rule():
    with pytest.raises(KeyError, match="no_such_rule"):
        stages.run(_job("no_such_rule"))
    with pytest.raises(KeyError, match="'batch_x'.*'nope'"):
        stages.run(_job("batch_x", stage="nope"))

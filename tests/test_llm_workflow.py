"""The real Snakemake runs describe and refine on the openai backend against the
scripted server: clear errors, resume after a failure, no request on rerun, no key on disk.
Targets prompts.parquet only, so nothing past stage 3 runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from .conftest import ROOT
from .openai_server import KEY, KEY_VAR, WRONG, ScriptedOpenAI, assert_no_key_in

pytestmark = pytest.mark.workflow

DESCRIPTIONS = "results/citest/descriptions.parquet"
PROMPTS = "results/citest/prompts.parquet"


def snakemake(workdir: Path, key: str, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
        "--directory", str(workdir), "--configfile", str(workdir / "config.yaml"),
        "--cores", "2", *args,
    ]  # fmt: skip
    env = {**os.environ, KEY_VAR: key}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


def ok(proc: subprocess.CompletedProcess, workdir: Path) -> str:
    if proc.returncode != 0:
        logs = "\n".join(p.read_text()[-3000:] for p in (workdir / "logs").rglob("*.log"))
        raise AssertionError(f"snakemake failed:\n{proc.stderr[-5000:]}\n{logs}")
    return proc.stdout + proc.stderr


def use_openai(workdir: Path, base_url: str, model: str) -> None:
    config = yaml.safe_load((ROOT / ".test" / "config.yaml").read_text())
    endpoint = {
        "base_url": base_url, "model": model, "api_key_env": KEY_VAR, "timeout_s": 5,
        "max_retries": 1, "validation_retries": 1, "cache_dir": "results/llm-cache",
    }  # fmt: skip
    config["describe"].update(backend="openai", openai=endpoint)
    config["refine"] = {"backend": "openai", "openai": endpoint}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))


def test_openai_backends_through_snakemake(tmp_path):
    with ScriptedOpenAI(KEY) as server:
        use_openai(tmp_path, server.base_url, server.model)

        # A wrong key: one clear error, before any chat request.
        proc = snakemake(tmp_path, WRONG, DESCRIPTIONS)
        assert proc.returncode != 0
        assert f"rejected the API key from ${KEY_VAR} (HTTP 401)" in proc.stderr
        assert server.chat == []

        # One combination never gets a valid answer: the job fails naming it; the other
        # answers are cached (and the output is not written).
        server.reset(rule=lambda body: "garbage" if "collapses" in str(body["messages"]) else None)
        proc = snakemake(tmp_path, KEY, DESCRIPTIONS)
        assert proc.returncode != 0
        assert "class=falling" in proc.stderr and "1 of 3 requests failed" in proc.stderr
        assert len(server.chat) == 2 + 2
        assert not (tmp_path / DESCRIPTIONS).exists()

        # The next run asks only for the failed combination, then refines 5 init images.
        server.reset()
        ok(snakemake(tmp_path, KEY, PROMPTS), tmp_path)
        assert len(server.chat) == 4 + 1 + 5
        prompts = pd.read_parquet(tmp_path / PROMPTS)
        descriptions = pd.read_parquet(tmp_path / DESCRIPTIONS)
        assert (descriptions.backend == "openai").all() and len(descriptions) == 3
        pavad = prompts[prompts.method == "pavad"]
        assert len(pavad) == 5 and pavad.prompt.str.startswith("Generate ").all()
        assert pavad.prompt.str.endswith("natural movement, fixed camera").all()
        gvvad = prompts[prompts.method == "gvvad"]
        assert set(gvvad.prompt) == set(descriptions.abnormal) | set(descriptions.normal)

        # Forced reruns of both stages send nothing and write the same prompts.
        ok(snakemake(tmp_path, KEY, PROMPTS, "--forcerun", "describe", "refine"), tmp_path)
        assert len(server.chat) == 10
        pd.testing.assert_frame_equal(prompts, pd.read_parquet(tmp_path / PROMPTS))

        # Connection settings are not rule params: changing them reruns nothing.
        config = yaml.safe_load((tmp_path / "config.yaml").read_text())
        config["describe"]["openai"].update(max_concurrency=1, timeout_s=30)
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
        assert "Nothing to be done" in ok(snakemake(tmp_path, KEY, PROMPTS, "-n"), tmp_path)

    for secret in (KEY, WRONG):
        assert_no_key_in(tmp_path, secret)

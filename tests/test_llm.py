"""The openai backends of describe and refine, with the real `openai` client against a
scripted OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import copy
import logging
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from synthvad.describe import openai_backend as describe_llm
from synthvad.describe import template as describe_template
from synthvad.llm.batch import Job, run_jobs
from synthvad.llm.cache import AnswerCache, request_key
from synthvad.llm.client import LLMError, redact
from synthvad.llm.messages import InvalidAnswer
from synthvad.llm.settings import CONNECTION_KEYS, LLMSettings, answer_params
from synthvad.refine import openai_backend as refine_vlm
from synthvad.refine import template as refine_template

from .conftest import ROOT
from .openai_server import KEY, KEY_VAR, WRONG, ScriptedOpenAI, assert_no_key_in, key_fragments


@pytest.fixture(scope="module")
def describe_config():
    """The sections describe reads, from config.yaml (6 classes, 2 combinations each)."""
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    return {"seed": 0, "classes": raw["classes"], "describe": raw["describe"]}


@pytest.fixture(scope="module")
def server():
    with ScriptedOpenAI(KEY, retry_after=1.0) as srv:
        yield srv


@pytest.fixture
def env_key(monkeypatch):
    monkeypatch.setenv(KEY_VAR, KEY)


def settings(server: ScriptedOpenAI, root: Path, stage: str = "describe", **overrides):
    block = {
        "base_url": server.base_url,
        "model": server.model,
        "api_key_env": KEY_VAR,
        "temperature": 0.7,
        "max_tokens": 200,
        "max_concurrency": 4,
        "timeout_s": 5.0,
        "max_retries": 2,
        "validation_retries": 2,
        "cache_dir": str(root / "llm-cache"),
        **overrides,
    }
    return LLMSettings.from_config(stage, block)


def one_class_config(describe_config, cls: str = "falling", per_class: int = 1) -> dict:
    config = copy.deepcopy(describe_config)
    config["classes"] = [c for c in config["classes"] if c["name"] == cls]
    config["describe"]["per_class"] = per_class
    return config


def test_descriptions_are_cached_resumed_and_grown(describe_config, server, env_key, tmp_path):
    server.reset()
    config = copy.deepcopy(describe_config)  # 6 classes x 2 combinations
    cfg = settings(server, tmp_path)
    before = len(server.chat)
    df = describe_llm.run(config, cfg, tmp_path / "d.parquet")
    assert len(server.chat) - before == 12
    template_columns = describe_template.run(config, tmp_path / "t.parquet").columns
    assert list(df.columns) == list(template_columns)
    assert (df.backend == "openai").all() and (df.model == server.model).all()
    for row in df.itertuples():
        assert row.event in row.abnormal and row.event not in row.normal
        assert AnswerCache(cfg.cache_dir).path(row.request_hash).exists()
    # A rerun sends nothing; with every answer cached neither key nor server is needed.
    offline = settings(server, tmp_path, base_url="http://127.0.0.1:9/v1", api_key_env="UNSET_VAR")
    again = describe_llm.run(config, offline, tmp_path / "d2.parquet")
    pd.testing.assert_frame_equal(df, again)
    assert len(server.chat) - before == 12
    # Growing per_class keeps the earlier combinations at their index: pays for 6 only.
    config["describe"]["per_class"] = 3
    grown = describe_llm.run(config, cfg, tmp_path / "d3.parquet")
    assert len(server.chat) - before == 18
    merged = grown.merge(df, on=["class", "index"], suffixes=("", "_before"))
    assert len(merged) == 12 and (merged.abnormal == merged.abnormal_before).all()
    assert_no_key_in(tmp_path)


def test_invalid_answer_is_asked_again_with_the_problem(describe_config, server, env_key, tmp_path):
    server.reset(script=["garbage"])
    before = len(server.chat)
    df = describe_llm.run(
        one_class_config(describe_config), settings(server, tmp_path), tmp_path / "d.pq"
    )
    asked = server.chat[before:]
    assert [r["mode"] for r in asked] == ["garbage", "good"]
    re_ask = asked[1]["messages"]
    assert re_ask[-2] == {"role": "assistant", "content": "Sorry, I cannot help with that!"}
    assert "rejected: the answer is not a JSON object" in re_ask[-1]["content"]
    assert asked[0]["response_format"] == {"type": "json_object"}
    assert "collapses to the ground" in df.abnormal[0]


def test_failed_item_is_named_and_the_rest_resume(describe_config, server, env_key, tmp_path):
    config = copy.deepcopy(describe_config)
    config["describe"]["per_class"] = 1
    poisoned = lambda body: "garbage" if "collapses" in str(body["messages"][1]) else None  # noqa: E731
    server.reset(rule=poisoned)
    cfg = settings(server, tmp_path, validation_retries=1)
    before = len(server.chat)
    with pytest.raises(LLMError) as err:
        describe_llm.run(config, cfg, tmp_path / "d.parquet")
    message = str(err.value)
    assert "1 of 6 requests failed" in message
    assert "class=falling" in message and "event='collapses to the ground'" in message
    assert "no valid answer in 2 attempts" in message
    assert len(server.chat) - before == 5 + 2
    assert len(list(Path(cfg.cache_dir).rglob("*.json"))) == 5
    assert not (tmp_path / "d.parquet").exists()
    server.reset()
    df = describe_llm.run(config, cfg, tmp_path / "d.parquet")
    assert len(server.chat) - before == 5 + 2 + 1
    assert len(df) == 6


def test_retry_after_is_honoured(describe_config, server, env_key, tmp_path):
    server.reset(script=["429"])
    before = len(server.chat)
    describe_llm.run(
        one_class_config(describe_config), settings(server, tmp_path), tmp_path / "d.pq"
    )
    first, second = server.arrivals[before:]
    # Retry-After: 1 s; the client's own first backoff would be at most 0.5 s.
    assert 0.95 <= second - first < 3.0


def test_server_errors_and_hangs_are_retried(describe_config, server, env_key, tmp_path):
    server.reset(script=["500", "hang"])
    server.hang_s = 2.0
    before = len(server.chat)
    cfg = settings(server, tmp_path, timeout_s=0.5)
    describe_llm.run(one_class_config(describe_config), cfg, tmp_path / "d.parquet")
    assert [r["mode"] for r in server.chat[before:]] == ["500", "hang", "good"]
    server.reset(default="hang")
    with pytest.raises(LLMError, match=r"no answer from http://127\.0\.0\.1:\d+/v1 within"):
        describe_llm.run(one_class_config(describe_config, "running"), settings(
            server, tmp_path, timeout_s=0.3, max_retries=0), tmp_path / "e.parquet")  # fmt: skip
    server.reset()


def test_wrong_key_is_one_clear_error_before_any_request(
    describe_config, server, monkeypatch, tmp_path, caplog
):
    monkeypatch.setenv(KEY_VAR, WRONG)
    server.reset()
    before = len(server.chat)
    with caplog.at_level(logging.DEBUG), pytest.raises(LLMError) as err:
        describe_llm.run(describe_config, settings(server, tmp_path), tmp_path / "d.parquet")
    assert f"rejected the API key from ${KEY_VAR} (HTTP 401)" in str(err.value)
    assert len(server.chat) == before
    text = str(err.value) + caplog.text
    assert not [f for f in key_fragments(WRONG) if f in text]
    assert_no_key_in(tmp_path, WRONG)


def test_missing_variable_and_pasted_key_are_clear_errors(
    describe_config, server, monkeypatch, tmp_path
):
    monkeypatch.delenv(KEY_VAR, raising=False)
    with pytest.raises(LLMError, match=f"environment variable {KEY_VAR} is not set"):
        describe_llm.run(describe_config, settings(server, tmp_path), tmp_path / "d.parquet")
    with pytest.raises(LLMError, match="NAME of an environment variable") as err:
        describe_llm.run(
            describe_config, settings(server, tmp_path, api_key_env=KEY), tmp_path / "d.parquet"
        )
    assert KEY[:8] not in str(err.value)


def test_unreachable_server_and_unknown_model_are_named(describe_config, server, env_key, tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    with pytest.raises(LLMError, match=f"cannot reach {dead} \\(describe.openai.base_url\\)"):
        describe_llm.run(
            describe_config,
            settings(server, tmp_path, base_url=dead, max_retries=0),
            tmp_path / "d",
        )
    with pytest.raises(LLMError, match="describe.openai.model: 'gpt-9' is not served"):
        describe_llm.run(describe_config, settings(server, tmp_path, model="gpt-9"), tmp_path / "d")


def write_image(path: Path, seed: int) -> str:
    pixels = np.random.default_rng(seed).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return str(path)


def test_refine_sends_images_and_appends_template_phrases(server, env_key, tmp_path):
    server.reset()
    images = pd.DataFrame(
        {
            "class": ["road_accident", "normal"],
            "rank": [0, 0],
            "image": [write_image(tmp_path / "a.png", 0), write_image(tmp_path / "b.png", 1)],
        }
    )
    images.to_parquet(tmp_path / "init.parquet")
    cfg = {"template_phrases": ["natural movement", "fixed camera"], "max_words": 60}
    cfg_vlm = settings(server, tmp_path, stage="refine")
    planned = ["pavad-road_accident-000", "pavad-normal-000"]
    before = len(server.chat)

    def refine():
        init = str(tmp_path / "init.parquet")

        def pavad_rows(images):
            return refine_vlm.refined_pavad_prompts(images, cfg, cfg_vlm)

        return refine_template.run(
            "openai",
            pavad_rows,
            ["pavad"],
            planned,
            None,
            init,
            tmp_path / "p",
            tmp_path / "prompts",
        )

    df = refine()
    assert len(server.chat) - before == 2
    content = server.chat[before]["messages"][1]["content"]
    assert [p["type"] for p in content] == ["text", "image_url"]
    assert df.clip_id.tolist() == planned and (df.backend == "openai").all()
    assert df.prompt[0].startswith("Generate road accident behavior, manifested as")
    assert df.prompt[1].startswith("Generate normal behavior, manifested as")
    assert all(p.endswith(", natural movement, fixed camera") for p in df.prompt)
    assert df.request_hash.notna().all() and (df.model == server.model).all()
    refine()
    assert len(server.chat) - before == 2  # cached
    write_image(tmp_path / "b.png", 2)  # new image bytes: a new request
    refine()
    assert len(server.chat) - before == 3


def test_describe_validation():
    combo = {
        "class": "falling", "viewpoint": "a ceiling camera", "location": "a train station",
        "subject": "a passenger", "event": "collapses to the ground",
    }  # fmt: skip
    check = describe_llm.validate(combo, max_chars=120)
    fenced = (
        '```json\n{"abnormal": "A passenger collapsing on the platform.", "normal": "Calm."}\n```'
    )
    assert check(fenced) == ("A passenger collapsing on the platform.", "Calm.")
    for answer, problem in [
        ("not json", "not a JSON object"),
        ('{"abnormal": "A passenger collapses."}', "'normal' is missing"),
        ('{"abnormal": "A passenger waves.", "normal": "Calm."}', "does not mention the event"),
        ('{"abnormal": "collapses", "normal": "' + "x" * 121 + '"}', "more than 120"),
        ('{"abnormal": "collapses", "normal": "he collapses to the ground"}', "normal description"),
    ]:
        with pytest.raises(InvalidAnswer, match=problem):
            check(answer)


def test_refine_validation():
    check = refine_vlm.validate("fighting", max_words=20)
    ok = '"Generate fighting behavior, manifested as two men shoving near the bench."'
    assert check(ok) == "Generate fighting behavior, manifested as two men shoving near the bench"
    for answer, problem in [
        ("", "empty"),
        ("Two men fight.", "completing"),
        ("Generate fighting behavior. Then they leave.", "2 sentences"),
        ("Generate fighting behavior, manifested as " + "very " * 20, "more than 20"),
        ("Generate fighting behavior while the camera pans left", "camera motion"),
        ("Generate abnormal behavior, manifested as a man shouting.", "for this fighting clip"),
        ("Generate running behavior, manifested as a man sprinting.", "for this fighting clip"),
    ]:
        with pytest.raises(InvalidAnswer, match=problem):
            check(answer)


def test_refine_accepts_its_own_class_in_either_spelling():
    check = refine_vlm.validate("road_accident", max_words=20)
    answer = "Generate road  accident behaviour manifested as two cars colliding at the crossing"
    assert check(answer) == answer.replace("  ", " ")
    assert refine_vlm.validate("normal", 20)(
        "Generate normal behavior, manifested as people walking"
    )


def test_redact_removes_the_key_and_echoed_parts():
    message = f"Incorrect API key provided: {WRONG[:8]}****{WRONG[-4:]}; full {WRONG}"
    clean = redact(message, WRONG)
    assert WRONG not in clean and WRONG[:8] not in clean and "Incorrect API key" in clean


def test_connection_keys_are_not_rule_params():
    section = {
        "backend": "openai",
        "per_class": 2,
        "max_chars": 600,
        "openai": {**dict.fromkeys(CONNECTION_KEYS, 1), "model": "m"},
    }
    assert answer_params(section) == {**section, "openai": {"model": "m"}}
    template = {**section, "backend": "template"}
    assert answer_params(template) == {"backend": "template", "per_class": 2}


def test_request_key_covers_model_messages_and_parameters(server, tmp_path):
    cfg = settings(server, tmp_path)
    job = Job("item", [{"role": "user", "content": "hi"}], str, "again")
    keys = {
        request_key({"model": m, "messages": job.messages, "temperature": t})
        for m in ("a", "b")
        for t in (0.0, 0.5)
    }
    assert len(keys) == 4
    assert run_jobs([], cfg) == []


def test_concurrency_is_bounded(describe_config, server, env_key, tmp_path):
    server.reset()
    lock, in_flight, peak = threading.Lock(), [0], [0]

    def slow(text: str) -> str:  # runs in the worker threads, while they hold a slot
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.05)
        with lock:
            in_flight[0] -= 1
        return text

    jobs = [Job(f"item {i}", [{"role": "user", "content": f"q{i}"}], slow, "") for i in range(8)]
    run_jobs(jobs, settings(server, tmp_path, max_concurrency=2))
    assert 1 <= peak[0] <= 2

"""The `<stage>.openai` config block, split into what changes answers and what does not."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

# Keys that change how requests travel, never what is answered. They stay out of rule
# params: changing the server address or the parallelism must not rerun the stage (and
# with it every synthesis job downstream). The request cache ignores them for the same reason.
CONNECTION_KEYS = (
    "base_url",
    "api_key_env",
    "max_concurrency",
    "timeout_s",
    "max_retries",
    "validation_retries",
    "cache_dir",
)


@dataclass(frozen=True)
class LLMSettings:
    stage: str  # the config section, so that messages name the key to fix
    base_url: str
    model: str
    api_key_env: str | None
    temperature: float
    max_tokens: int
    max_concurrency: int
    timeout_s: float
    max_retries: int
    validation_retries: int
    cache_dir: str

    @classmethod
    def from_config(cls, stage: str, block: dict[str, Any]) -> LLMSettings:
        return cls(
            stage=stage, **{key: block[key] for key in cls.__dataclass_fields__ if key != "stage"}
        )

    @property
    def key(self) -> str:
        """The config key of this block, for error messages."""
        return f"{self.stage}.openai"


# Stage keys that only the openai backend reads (answer validation and format).
OPENAI_ONLY_KEYS = ("max_chars", "json_mode", "max_words")


def answer_params(section: dict[str, Any]) -> dict[str, Any]:
    """A stage section as rule params: the openai settings only when that backend runs,
    and then without the connection keys."""
    out = copy.deepcopy(section)
    block = out.pop("openai", None)
    if out.get("backend") != "openai":
        return {k: v for k, v in out.items() if k not in OPENAI_ONLY_KEYS}
    if block is not None:
        out["openai"] = {k: v for k, v in block.items() if k not in CONNECTION_KEYS}
    return out


def settings_for(stage: str, params_section: dict[str, Any], config: dict[str, Any]) -> LLMSettings:
    """Answer-affecting keys from the rule's params, connection keys from the config."""
    return LLMSettings.from_config(
        stage, {**config[stage]["openai"], **params_section.get("openai", {})}
    )

"""On-disk answers, one JSON file per request, named by the request's content hash.

The folder is not a Snakemake output (Snakemake deletes outputs before rerunning a job),
so answers survive failed and repeated runs: a run pays only for requests not yet answered.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from synthvad.io.atomic import write_json


def request_key(request: dict[str, Any]) -> str:
    """sha256 of the request as sent: model, messages (image bytes included, as data
    URLs) and sampling parameters."""
    return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()


class AnswerCache:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        path = self.path(key)
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None  # unreadable: asked again and overwritten

    def put(self, key: str, record: dict[str, Any]) -> None:
        write_json({**record, "request_hash": key, "saved_at": time.time()}, self.path(key))

"""Where a diffusers pipeline lives: a local folder, or a hub id in the user's HF cache.

Compute nodes rarely reach the internet, so a hub id is resolved from the local cache
only, unless the config allows a download. The resolved folder and the revision (the
cache snapshot's commit) go into every clip's sidecar.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
COMMIT = re.compile(r"^[0-9a-f]{40}$")


class ModelLocationError(ValueError):
    """A model that cannot be found or is not the expected pipeline; names the config key."""


@dataclass(frozen=True)
class ModelLocation:
    folder: Path
    revision: str | None  # the hub commit, when known
    source: str  # "folder" or "hf-cache"
    pipeline_class: str  # model_index.json's _class_name


def pipeline_class_of(folder: Path) -> str | None:
    """The pipeline class a diffusers folder declares, or None when it is not one."""
    index = folder / "model_index.json"
    if not index.is_file():
        return None
    try:
        return json.loads(index.read_text()).get("_class_name")
    except (OSError, json.JSONDecodeError):
        return None


def _snapshot_commit(folder: Path) -> str | None:
    """The commit of a folder inside an HF cache (…/snapshots/<commit>)."""
    if folder.parent.name == "snapshots" and COMMIT.match(folder.name):
        return folder.name
    return None


def _from_hf_cache(
    repo_id: str, revision: str | None, allow_download: bool, key: str, cache_dir: str | None
) -> Path:
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import (
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        return Path(
            snapshot_download(
                repo_id,
                revision=revision,
                cache_dir=cache_dir,
                local_files_only=not allow_download,
            )
        )
    except (LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError) as exc:
        where = cache_dir or constants.HF_HUB_CACHE
        at = f" at revision {revision!r}" if revision else ""
        fix = (
            f"download it where there is internet (`hf download {repo_id}"
            f"{f' --revision {revision}' if revision else ''}`) into that cache, point {key} "
            f"at a local folder, or set {key.rsplit('.', 1)[0]}.allow_download: true"
        )
        if allow_download:
            fix = "check the id and revision, and that this machine can reach the hub"
        raise ModelLocationError(
            f"{key}: {repo_id!r}{at} is not a local folder and could not be found in the HF "
            f"cache {where} ({type(exc).__name__}); {fix}"
        ) from exc


def locate_model(
    spec: str | None,
    revision: str | None,
    allow_download: bool,
    expected_class: str,
    key: str,
    cache_dir: str | None = None,
) -> ModelLocation:
    """Resolve `spec` (folder or hub id) to a pipeline folder of `expected_class`.

    `key` is the config key of `spec` (e.g. synthesize.wan_i2v.model), named in every error.
    """
    if not spec:
        raise ModelLocationError(
            f"{key} is not set: give a local diffusers pipeline folder (with model_index.json) "
            f"or a hub id present in your HF cache, for a {expected_class}"
        )
    path = Path(spec).expanduser()
    if path.exists():
        folder, source = path.resolve(), "folder"
        if not folder.is_dir():
            raise ModelLocationError(f"{key}: {spec!r} is a file, not a pipeline folder")
    elif HUB_ID.match(spec):
        folder, source = _from_hf_cache(spec, revision, allow_download, key, cache_dir), "hf-cache"
    else:
        raise ModelLocationError(f"{key}: folder {spec!r} does not exist (and is not a hub id)")

    found = pipeline_class_of(folder)
    if found is None:
        raise ModelLocationError(
            f"{key}: {folder} is not a diffusers pipeline folder (no readable model_index.json); "
            f"expected a saved {expected_class}"
        )
    if found != expected_class:
        raise ModelLocationError(
            f"{key}: {folder} holds a {found} (model_index.json), expected a {expected_class}"
        )
    return ModelLocation(
        folder=folder,
        revision=_snapshot_commit(folder),
        source=source,
        pipeline_class=found,
    )

"""The documentation stays true to the code: config keys it names exist in the schema,
relative links resolve (files and headings), and the README stays short.

Config keys are found as inline code spans that are a dotted path whose first segment is
a top-level key of workflow/schemas/config.schema.yaml (`filter.min_motion`,
`synthesize.<generator>.model`, `detect.*`, also `features.extractor: motion`). File
names (`report.html`, `filter.py`) are not keys. Fenced code blocks are not read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 150

# A segment: a name, a placeholder for any name (`<generator>`, `<name>`), or `*`.
SEGMENT = r"(?:[A-Za-z_][A-Za-z0-9_]*|<[A-Za-z_][A-Za-z0-9_ -]*>|\*)"
KEY_SPAN = re.compile(rf"^({SEGMENT}(?:\.{SEGMENT})+)(?::\s.*)?$")
FILE_SUFFIXES = {
    "cff", "csv", "html", "json", "jsonl", "list", "log", "md", "mp4", "npy", "npz", "parquet",
    "pkl", "png", "pt", "pth", "py", "rst", "safetensors", "smk", "toml", "tsv", "txt", "yaml",
    "yml",
}  # fmt: skip
CODE_SPAN = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"!?\[(?:[^\]\n]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
ANY = object()  # a placeholder segment
FREE = {"$free": True}  # a free-form object: any key below it is valid


# --- Markdown ----------------------------------------------------------------------------


def prose_lines(text: str) -> Iterator[str]:
    """The lines outside fenced code blocks."""
    fence = None
    for line in text.splitlines():
        marker = re.match(r"^\s*(`{3,}|~{3,})", line)
        if marker:
            if fence is None:
                fence = marker.group(1)[0] * 3
            elif marker.group(1).startswith(fence):
                fence = None
            continue
        if fence is None:
            yield line


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: link text kept, lower case, punctuation dropped
    (hyphens and underscores stay), spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in prose_lines(path.read_text()):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def broken_links(path: Path) -> list[str]:
    """Relative links of a Markdown file whose file or heading does not exist."""
    problems = []
    for line in prose_lines(path.read_text()):
        for target in LINK.findall(CODE_SPAN.sub("", line)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, flags=re.I):  # http:, mailto:, ...
                continue
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            if not linked.exists():
                problems.append(f"{target}: no such file or folder")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                problems.append(f"{target}: no heading #{anchor} in {linked.name}")
    return problems


# --- config keys -------------------------------------------------------------------------


def config_keys(text: str) -> list[str]:
    """Dotted config paths named in inline code, outside fenced blocks."""
    top = set(SCHEMA["properties"])
    keys = []
    for line in prose_lines(text):
        for span in CODE_SPAN.findall(line):
            match = KEY_SPAN.match(span.strip())
            if not match:
                continue
            key = match.group(1)
            parts = key.split(".")
            if parts[0] in top and parts[-1].lower() not in FILE_SUFFIXES:
                keys.append(key)
    return keys


def _pointer(ref: str) -> dict:
    assert ref.startswith("#/"), ref
    node = SCHEMA
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def _variants(node: dict) -> Iterator[dict]:
    """A schema node and every subschema whose properties also apply to its instance."""
    if not isinstance(node, dict):
        return
    yield node
    if "$ref" in node:
        yield from _variants(_pointer(node["$ref"]))
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in node.get(key, []):
            yield from _variants(sub)
    for key in ("then", "else"):
        yield from _variants(node.get(key))
    if isinstance(node.get("items"), dict):  # a list of objects: its items' keys
        yield from _variants(node["items"])


def _is_free_form(node: dict) -> bool:
    types = node.get("type", [])
    types = [types] if isinstance(types, str) else types
    structural = ("properties", "patternProperties", "additionalProperties", "$ref", "allOf")
    return "object" in types and not any(k in node for k in structural)


def _children(node: dict, segment: object) -> list[dict]:
    found = []
    for variant in _variants(node):
        if _is_free_form(variant):
            return [FREE]
        properties = variant.get("properties", {})
        if segment is ANY:
            found.extend(properties.values())
        elif segment in properties:
            found.append(properties[segment])
        for pattern, sub in variant.get("patternProperties", {}).items():
            if segment is ANY or re.search(pattern, segment):
                found.append(sub)
        if isinstance(variant.get("additionalProperties"), dict):  # user-named entries
            found.append(variant["additionalProperties"])
    return found


def key_exists(key: str) -> bool:
    """Whether the schema allows this dotted path; `<...>` and `*` stand for any name."""
    nodes = [SCHEMA]
    for part in key.split("."):
        segment = ANY if part == "*" or part.startswith("<") else part
        nodes = [child for node in nodes for child in _children(node, segment)]
        if any(node is FREE for node in nodes):
            return True
        if not nodes:
            return False
    return True


def unknown_keys(text: str) -> list[str]:
    return sorted({key for key in config_keys(text) if not key_exists(key)})


# --- tests -------------------------------------------------------------------------------


def test_the_key_extraction_finds_the_documented_keys():
    readme = set(config_keys(README.read_text()))
    everywhere = {key for page in PAGES for key in config_keys(page.read_text())}
    assert len(readme) >= 8, sorted(readme)
    assert len(everywhere) >= 60, sorted(everywhere)
    for key in ("filter.min_motion", "features.extractor", "detect.crops", "clip.pretrained"):
        assert key in everywhere
    assert "synthesize.<generator>.model" in readme
    assert "features.extractor" in config_keys("set `features.extractor: motion` here")


def test_made_up_keys_are_reported_and_real_ones_accepted():
    text = (
        "`filter.no_such_key`, `detectors.<name>.no_such_setting`, `synthesize.<gen>.nope`, "
        "`features.i3d.no_such`, `describe.openai.no_such: 1`, `detect.select_on`, "
        "`synthesize.cogvideox.lora`, `features.i3d.device`, `detectors.topk_bce.lr`, "
        "`experiments.<name>.seeds`, `synthesize.wan_i2v.scheduler_config.flow_shift`, "
        "`refine.openai.temperature`, `detect.*`, `report.html`, `filter.py`"
    )
    assert unknown_keys(text) == sorted(
        {
            "filter.no_such_key",
            "detectors.<name>.no_such_setting",
            "synthesize.<gen>.nope",
            "features.i3d.no_such",
            "describe.openai.no_such",
        }
    )
    assert "report.html" not in config_keys(text) and "filter.py" not in config_keys(text)
    assert not key_exists("detectors.<name>.model.deeper")
    assert not key_exists("clip.batch_size.x")


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_config_keys_in_the_docs_exist_in_the_schema(page):
    assert unknown_keys(page.read_text()) == []


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_relative_links_point_to_existing_files_and_headings(page):
    assert broken_links(page) == []


def test_the_link_check_reports_missing_files_and_headings(tmp_path):
    (tmp_path / "other.md").write_text("# Other\n\n## Form B: pre-extracted `data.features`\n")
    page = tmp_path / "page.md"
    page.write_text(
        "## Here\n\n[ok](other.md) [ok](other.md#form-b-pre-extracted-datafeatures) "
        "[ok](#here) [web](https://example.org/x) `[not a link](nowhere.md)`\n"
        "[gone](missing.md) [bad](other.md#no-such-heading) [bad](#nowhere)\n"
        "```\n[in code](also-missing.md)\n```\n"
    )
    assert broken_links(page) == [
        "missing.md: no such file or folder",
        "other.md#no-such-heading: no heading #no-such-heading in other.md",
        "#nowhere: no heading #nowhere in page.md",
    ]


def test_the_readme_is_short():
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/"


def test_the_readme_keeps_the_ci_test_command():
    """.ci/run runs the fenced bash block right after the marker."""
    text = README.read_text()
    after = text.split("<!-- test-command -->\n", 1)[1]
    block = re.match(r"```bash\n(.+?)\n```", after, flags=re.S)
    assert block and "pytest" in block.group(1)

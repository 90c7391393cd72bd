"""A self-contained HTML gallery of the synthetic clips for the Snakemake report.

One HTML file, images embedded as base64 data URLs, inline CSS, no JavaScript and no
external resources: the filter's counts, one card per clip (frame strip, prompt, initial
image, filter verdict and scores) and the retrieved initial images per class.
"""

from __future__ import annotations

import base64
import html
import logging
import os
import re
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure  # object API: no pyplot state, Agg canvas for PNG
from PIL import Image, ImageDraw

from synthvad.io.atomic import atomic_path
from synthvad.io.strips import jpeg, strip_jpeg
from synthvad.io.video import VideoError, probe, read_frames
from synthvad.segments import sample_indices

log = logging.getLogger(__name__)

# (score column, threshold key of config["filter"]) in the filter's order of checks.
SCORES = (("frame_std", "min_std"), ("motion", "min_motion"), ("clip_score", "min_clip_score"))
INIT_HEIGHT = 128
# Strips decode in threads (decord, Pillow resize and JPEG encoding release the GIL).
WORKERS = max(1, min(4, os.cpu_count() or 1))

CSS = """
body { font-family: sans-serif; margin: 1em; color: #222; }
table.counts { border-collapse: collapse; font-size: 0.9em; }
table.counts th, table.counts td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
table.counts td.text, table.counts th.text { text-align: left; }
.cards { display: flex; flex-wrap: wrap; gap: 8px; }
.clip-card { border: 2px solid #ccc; border-radius: 4px; padding: 4px; max-width: 680px;
  font-size: 0.8em; }
.clip-card.kept { border-color: #3a3; }
.clip-card.rejected { border-color: #c33; background: #fff6f6; }
.clip-card img.strip { display: block; max-width: 100%; }
.clip-card .prompt { margin: 2px 0; white-space: pre-wrap; }
.clip-card .init { display: flex; gap: 6px; align-items: center; }
.verdict.kept { color: #272; font-weight: bold; }
.verdict.rejected { color: #a22; font-weight: bold; }
.score.fails { color: #a22; font-weight: bold; }
.left-out { font-style: italic; color: #555; }
.init-grid { display: flex; flex-wrap: wrap; gap: 6px; }
.init-card { margin: 0; font-size: 0.75em; text-align: center; }
"""


def _placeholder(text: str, width: int, height: int) -> bytes:
    """A grey JPEG with `text` in its centre."""
    image = Image.new("RGB", (width, height), (160, 160, 160))
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = draw.textbbox((0, 0), text)
    xy = ((width - (right - left)) // 2, (height - (bottom - top)) // 2)
    draw.text(xy, text, fill=(40, 40, 40))
    return jpeg(image)


def _strip(path: str, n_frames: int | None, n: int, height: int) -> bytes:
    """frame_strip, with the frame count known (the filter's n_frames) or probed (None)."""
    try:
        count = probe(path).n_frames if n_frames is None else n_frames
        frames = read_frames(path, sample_indices(0, count, n))
    except VideoError as exc:
        log.debug("no frame strip for %s: %s", path, exc.reason)
        return _placeholder("not decodable", 4 * height, height)
    return strip_jpeg(frames, height)


def read_strips(chunk_paths: list[str]) -> dict[str, bytes]:
    """clip_id -> frame strip JPEG, from the filter's chunk files (chunks written before
    the filter made strips have none: their clips are decoded here instead)."""
    import pyarrow.parquet as pq

    strips: dict[str, bytes] = {}
    for path in chunk_paths:
        if "strip" not in pq.read_schema(path).names:
            continue
        table = pd.read_parquet(path, columns=["clip_id", "strip"]).dropna()
        strips.update(zip(table["clip_id"].astype(str), table["strip"], strict=True))
    return strips


def frame_strip(path: str, n: int = 6, height: int = 72) -> bytes:
    """JPEG of `n` evenly spaced frames side by side, each `height` px high; a grey
    "not decodable" placeholder when the clip cannot be decoded."""
    return _strip(path, None, n, height)


def _thumbnail(path: Path, height: int = INIT_HEIGHT) -> bytes | None:
    """JPEG of an image scaled to `height` px high, None when it cannot be read."""
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            width = max(1, round(image.width * height / image.height))
            return jpeg(image.resize((width, height), Image.Resampling.BILINEAR, None, 2.0))
    except OSError as exc:
        log.warning("initial image %s cannot be read: %s", path, exc)
        return None


def _data_url(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def filter_histograms(path: Path, filtered: pd.DataFrame, thresholds: Mapping[str, float]) -> None:
    """PNG: one histogram per filter score, kept and rejected clips stacked, each
    threshold a vertical line named by its config key. Undecodable clips are left out
    (they have no scores)."""
    scored = filtered[filtered["decodable"].astype(bool)] if "decodable" in filtered else filtered
    n_corrupt = len(filtered) - len(scored)
    keep = scored["keep"].astype(bool)
    fig = Figure(figsize=(4 * len(SCORES), 3.2), layout="constrained")
    axes = fig.subplots(1, len(SCORES))
    for ax, (column, key) in zip(axes, SCORES, strict=True):
        values = pd.to_numeric(scored[column], errors="coerce")
        kept = values[keep].dropna().to_numpy(dtype=float)
        rejected = values[~keep].dropna().to_numpy(dtype=float)
        if len(kept) + len(rejected):
            ax.hist(
                [kept, rejected],
                bins=30,
                stacked=True,
                color=["tab:green", "tab:red"],
                label=[f"kept ({len(kept)})", f"rejected ({len(rejected)})"],
            )
        else:
            ax.text(0.5, 0.5, "no decodable clip", ha="center", va="center", transform=ax.transAxes)
        if key in thresholds and thresholds[key] is not None:
            value = float(thresholds[key])
            ax.axvline(value, color="black", ls="--", lw=1.2, label=f"{key} = {value:g}")
        ax.set_xlabel(column)
        ax.set_ylabel("clips")
        ax.legend(fontsize="small")
    title = "Filter scores of the synthetic clips"
    if n_corrupt:
        title += f" ({n_corrupt} undecodable clips not shown)"
    fig.suptitle(title)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)


def _reasons(reasons: pd.Series) -> str:
    counts = reasons.value_counts()
    counts = counts.sort_index().sort_values(ascending=False, kind="stable")
    return ", ".join(f"{reason}: {n}" for reason, n in counts.items())


def counts_table(filtered: pd.DataFrame) -> pd.DataFrame:
    """Kept, rejected and total clips per (method, class, label), with the rejection
    reasons as "reason: count, ..." (most frequent first; "" when none)."""
    rows = []
    for (method, cls, label), group in filtered.groupby(["method", "class", "label"], sort=True):
        keep = group["keep"].astype(bool)
        rows.append(
            {
                "method": method,
                "class": cls,
                "label": label,
                "kept": int(keep.sum()),
                "rejected": int((~keep).sum()),
                "total": len(group),
                "reasons": _reasons(group.loc[~keep, "reason"]),
            }
        )
    columns = ["method", "class", "label", "kept", "rejected", "total", "reasons"]
    return pd.DataFrame(rows, columns=columns)


def _label_name(label: object) -> str:
    if isinstance(label, str):
        return label
    return "abnormal" if int(label) else "normal"  # type: ignore[call-overload]


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


class _Ids:
    """Unique HTML ids from arbitrary names."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def __call__(self, prefix: str, name: str) -> str:
        base = f"{prefix}-" + re.sub(r"[^A-Za-z0-9_-]", "_", str(name))
        candidate, i = base, 1
        while candidate in self.used:
            i += 1
            candidate = f"{base}-{i}"
        self.used.add(candidate)
        return candidate


def _even(group: pd.DataFrame, max_clips: int | None) -> pd.DataFrame:
    """At most `max_clips` rows, evenly spaced over the group's order."""
    if max_clips is None or len(group) <= max_clips:
        return group
    return group.iloc[sample_indices(0, len(group), max_clips)] if max_clips > 0 else group[:0]


def _counts_html(table: pd.DataFrame) -> list[str]:
    e = html.escape
    head = ["method", "class", "label", "kept", "rejected", "total", "reasons of rejection"]
    text = {"method", "class", "label", "reasons of rejection"}
    lines = ['<table class="counts" id="counts-table"><tr>']
    lines += [f'<th class="{"text" if h in text else "num"}">{e(h)}</th>' for h in head]
    lines.append("</tr>")
    for row in table.to_dict("records"):
        cells = [e(str(row["method"])), e(str(row["class"])), e(_label_name(row["label"]))]
        lines.append(
            "<tr>"
            + "".join(f'<td class="text">{c}</td>' for c in cells)
            + "".join(f"<td>{row[k]}</td>" for k in ("kept", "rejected", "total"))
            + f'<td class="text">{e(row["reasons"])}</td></tr>'
        )
    kept, rejected = int(table["kept"].sum()), int(table["rejected"].sum())
    lines.append(
        '<tr class="total"><td class="text" colspan="3">all</td>'
        f"<td>{kept}</td><td>{rejected}</td><td>{kept + rejected}</td><td></td></tr>"
    )
    lines.append("</table>")
    return lines


def _score_html(row: Mapping, thresholds: Mapping[str, float]) -> str:
    cells = []
    for column, key in SCORES:
        value = row.get(column)
        if _missing(value):
            cells.append(f'<span class="score">{column} n/a</span>')
            continue
        limit = thresholds.get(key)
        fails = limit is not None and bool(row.get("decodable", True)) and value < limit
        css = "score fails" if fails else "score"
        cells.append(f'<span class="{css}" data-score="{column}">{column} {value:.3f}</span>')
    return " · ".join(cells)


def _card_html(
    card_id: str,
    row: Mapping,
    strip: bytes,
    init: tuple[str | None, Mapping] | None,
    thresholds: Mapping[str, float],
) -> str:
    e = html.escape
    kept = bool(row["keep"])
    verdict = "kept" if kept else f"rejected: {row.get('reason')}"
    label = _label_name(row["label"])
    prompt = row.get("prompt")
    lines = [
        f'<div class="clip-card {"kept" if kept else "rejected"} label-{e(label)}" '
        f'id="{card_id}" data-clip-id="{e(str(row["clip_id"]))}">',
        f'<img class="strip" alt="frames of {e(str(row["clip_id"]))}" src="{_data_url(strip)}">',
        f'<div class="clip-id"><b>{e(str(row["clip_id"]))}</b> · '
        f'<span class="label">{e(label)}</span></div>',
        '<div class="prompt">'
        + ("<i>no prompt</i>" if _missing(prompt) else e(str(prompt)))
        + "</div>",
    ]
    if init is not None:
        url, rec = init
        image = (
            f'<img class="init-thumb" alt="initial image" src="{url}">'
            if url
            else '<span class="missing">initial image not found</span>'
        )
        s_pos, s_neg = rec.get("s_pos"), rec.get("s_neg")
        scores = (
            "no retrieval scores"
            if _missing(s_pos)
            else f"s_pos {float(s_pos):.3f} · s_neg {float(s_neg):.3f}"
        )
        lines.append(f'<div class="init">{image}<span class="init-scores">{scores}</span></div>')
    lines.append(
        f'<div class="verdict {"kept" if kept else "rejected"}">{e(verdict)}</div>'
        f'<div class="scores">{_score_html(row, thresholds)}</div></div>'
    )
    return "\n".join(lines)


def _init_lookup(
    init_images: pd.DataFrame | None, init_dir: Path | None
) -> tuple[dict[str, dict], dict[str, str | None]]:
    """(record by image path string, data URL by image path string) of the retrieved
    initial images; a file is read from init_dir / its name when init_dir is given."""
    records: dict[str, dict] = {}
    if init_images is None or init_images.empty:
        return records, {}
    for rec in init_images.to_dict("records"):
        records[str(rec["image"])] = rec
    paths = {
        key: (Path(init_dir) / Path(key).name if init_dir is not None else Path(key))
        for key in records
    }
    with ThreadPoolExecutor(WORKERS) as pool:
        thumbs = dict(zip(paths, pool.map(_thumbnail, paths.values()), strict=True))
    return records, {k: (_data_url(v) if v else None) for k, v in thumbs.items()}


def _init_section(
    init_images: pd.DataFrame | None, urls: Mapping[str, str | None], ids: _Ids
) -> list[str]:
    e = html.escape
    lines = ['<section id="init-images"><h2>Retrieved initial images</h2>']
    if init_images is None or init_images.empty:
        lines += ["<p>No initial images (no PA-VAD clips).</p>", "</section>"]
        return lines
    sort = ["class", "rank"] if "rank" in init_images else ["class"]
    for cls, group in init_images.sort_values(sort, kind="stable").groupby("class", sort=True):
        lines.append(f'<h3 id="{ids("init-class", cls)}">{e(str(cls))} ({len(group)})</h3>')
        lines.append('<div class="init-grid">')
        for rec in group.to_dict("records"):
            key = str(rec["image"])
            url = urls.get(key)
            image = (
                f'<img alt="{e(Path(key).name)}" src="{url}">'
                if url
                else '<span class="missing">not found</span>'
            )
            caption = [e(Path(key).name)]
            for column in ("score", "s_pos", "s_neg"):
                if column in rec and not _missing(rec[column]):
                    caption.append(f"{column} {float(rec[column]):.3f}")
            lines.append(
                f'<figure class="init-card" id="{ids("init", Path(key).stem)}">{image}'
                f"<figcaption>{'<br>'.join(caption)}</figcaption></figure>"
            )
        lines.append("</div>")
    lines.append("</section>")
    return lines


def _with_prompts(clips: pd.DataFrame, prompts: pd.DataFrame) -> pd.DataFrame:
    """The filter's clip rows with their prompt and initial image."""
    wanted = [c for c in ("clip_id", "prompt", "init_image") if c in prompts]
    extra = prompts[wanted].drop_duplicates("clip_id")
    return clips.merge(extra, on="clip_id", how="left", validate="one_to_one")


def _clip_strip(row: Mapping[str, Any], strips: Mapping[str, bytes] | None) -> bytes:
    """A clip's frame strip: the filter's stored one, else a placeholder where the filter
    found the clip undecodable, else decoded here."""
    stored = (strips or {}).get(str(row["clip_id"]))
    if stored is not None:
        return stored
    decodable = row.get("decodable")
    if not _missing(decodable) and not bool(decodable):
        return _placeholder("not decodable", 4 * 72, 72)
    # The filter's frame count saves a probe, which decodes the last frame (~40% of the
    # time per clip).
    n_frames = pd.to_numeric(row.get("n_frames"), errors="coerce")
    known = int(n_frames) if not pd.isna(n_frames) and n_frames > 0 else None
    return _strip(str(row["path"]), known, 6, 72)


def _init_of(
    row: Mapping[str, Any], records: Mapping[str, dict], urls: Mapping[str, str | None]
) -> tuple[str | None, dict] | None:
    """(data URL, retrieval record) of the clip's initial image; None for text-to-video."""
    key = row.get("init_image")
    if _missing(key) or not key:
        return None
    return urls.get(str(key)), records.get(str(key), {})


def write_gallery(
    out_html: Path,
    filtered: pd.DataFrame,
    prompts: pd.DataFrame,
    init_images: pd.DataFrame | None,
    init_dir: Path | None,
    thresholds: Mapping[str, float],
    max_clips: int | None = None,
    strips: Mapping[str, bytes] | None = None,
) -> int:
    """Write the self-contained HTML gallery; returns the number of clip cards.

    `max_clips` caps the cards per (method, class), evenly spaced over the clip ids.
    `strips`: frame strips by clip id (the filter's); other clips are decoded here."""
    start = time.perf_counter()
    e = html.escape
    clips = _with_prompts(filtered, prompts)
    clips = clips.sort_values(["method", "class", "clip_id"], kind="stable")
    sections = [
        (method, cls, group, _even(group, max_clips))
        for (method, cls), group in clips.groupby(["method", "class"], sort=True)
    ]
    shown = pd.concat([s for *_, s in sections]) if sections else clips[:0]
    with ThreadPoolExecutor(WORKERS) as pool:
        card_strips = list(pool.map(lambda row: _clip_strip(row, strips), shown.to_dict("records")))
    records, urls = _init_lookup(init_images, init_dir)

    ids = _Ids()
    table = counts_table(filtered)
    limits = ", ".join(
        f"{key} = {float(thresholds[key]):g}" for _, key in SCORES if key in thresholds
    )
    left_out = len(clips) - len(shown)
    body = [
        "<h1>Synthetic clips</h1>",
        f'<p class="summary">{len(clips)} clips, {int(filtered["keep"].astype(bool).sum())} '
        f"kept by the filter ({e(limits)}); {len(shown)} shown"
        + (f', <span class="left-out">{left_out} left out</span>' if left_out else "")
        + ".</p>",
        '<section id="counts"><h2>Clips kept and rejected by the filter</h2>',
        *_counts_html(table),
        "</section>",
    ]
    n_cards = 0
    for method, cls, group, chosen in sections:
        kept = int(group["keep"].astype(bool).sum())
        body.append(
            f'<section class="clip-section" id="{ids("section", f"{method}-{cls}")}" '
            f'data-method="{e(str(method))}" data-class="{e(str(cls))}">'
            f"<h2>{e(str(method))} / {e(str(cls))}: {len(group)} clips, {kept} kept</h2>"
        )
        if len(chosen) < len(group):
            body.append(
                f'<p class="left-out">{len(group) - len(chosen)} of {len(group)} clips left '
                f"out (at most {max_clips} cards per method and class).</p>"
            )
        body.append('<div class="cards">')
        for row in chosen.to_dict("records"):
            init = _init_of(row, records, urls)
            card_id = ids("clip", row["clip_id"])
            body.append(_card_html(card_id, row, card_strips[n_cards], init, thresholds))
            n_cards += 1
        body.append("</div></section>")
    body += _init_section(init_images, urls, ids)
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>Synthetic clips</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
    with atomic_path(out_html) as tmp:
        tmp.write_text(page, encoding="utf-8")
    log.info(
        "gallery %s: %d cards, %.1f MB, %.1f s",
        out_html,
        n_cards,
        len(page) / 1e6,
        time.perf_counter() - start,
    )
    return n_cards


def write_preview(
    out_html: Path,
    filtered: pd.DataFrame,
    prompts: pd.DataFrame,
    init_images: pd.DataFrame | None,
    init_dir: Path | None,
    thresholds: Mapping[str, float],
    per_method: int,
    strips: Mapping[str, bytes] | None = None,
) -> int:
    """An HTML fragment (with its own style) of the first `per_method` kept clips of each
    method, for the report's landing page; returns the number of cards."""
    kept = filtered[filtered["keep"].astype(bool)].sort_values(["method", "clip_id"])
    chosen = kept.groupby("method", sort=True).head(per_method)
    rows = _with_prompts(chosen, prompts)
    used = set(rows["init_image"].dropna()) if "init_image" in rows else set()
    subset = None if init_images is None else init_images[init_images["image"].isin(used)]
    records, urls = _init_lookup(subset, init_dir)
    ids, cards = _Ids(), []
    for row in rows.to_dict("records"):
        init = _init_of(row, records, urls)
        strip = _clip_strip(row, strips)
        cards.append(_card_html(ids("preview", row["clip_id"]), row, strip, init, thresholds))
    fragment = (
        f'<style>{CSS}</style><div id="synthvad-gallery-preview"><h2>Synthetic clips</h2>'
        f"<p>The first kept clips of each method; every clip, its prompt, initial image and "
        f'filter verdict are in the gallery under Synthetic data.</p><div class="cards">'
        + "\n".join(cards)
        + "</div></div>\n"
    )
    with atomic_path(out_html) as tmp:
        tmp.write_text(fragment, encoding="utf-8")
    return len(cards)

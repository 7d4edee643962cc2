"""A self-contained HTML page that shows trajectories the way people read them.

``render_html(folder, keys=None, n=5)`` shows, per sample: the question and options (gold marked), every
turn in order (system, user, each reasoning step, each tool call with its arguments, each tool result
with the frames it returned and their timestamps inline) and the final answer against the gold one.
Frames are embedded as ``data:`` URIs and the styles are inline: the page references no URL at all, so
it works offline, attached to an issue, or from a file share.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator, Sequence
from html import escape
from pathlib import Path

from loaders.sample import Sample
from validation.record import ImagePart, Message, TextPart, TrajectoryRecord, VideoPart, letter_index
from validation.semantics import final_answer
from validation.shards import DatasetIndex

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;
 background:#f4f5f7;color:#1d2330}
main{max-width:1100px;margin:0 auto;padding:16px 20px 60px}
h1{font-size:20px;margin:8px 0 4px} h2{font-size:17px;margin:0 0 6px}
.toc{background:#fff;border:1px solid #d9dce3;border-radius:6px;padding:8px 14px;margin:10px 0 18px}
.toc a{color:#2456a4;text-decoration:none} .muted{color:#6b7280;font-size:12px}
.sample{background:#fff;border:1px solid #d9dce3;border-radius:8px;padding:14px 18px;margin:0 0 22px}
.meta{color:#4b5563;font-size:12px;margin-bottom:8px}
.question{font-weight:600;margin:6px 0}
ol.options{margin:4px 0 10px;padding-left:0;list-style:none}
ol.options li{padding:2px 6px;border-radius:4px} ol.options li.gold{background:#e3f4e6}
.turn{border-left:4px solid #c7ccd6;padding:6px 10px;margin:8px 0;background:#fafbfc;
 border-radius:0 6px 6px 0}
.turn.system{border-color:#9ca3af} .turn.user{border-color:#2f6fd0} .turn.assistant{border-color:#8b5cf6}
.turn.tool{border-color:#d97706}
.role{font-size:11px;font-weight:700;text-transform:uppercase;letter-spacing:.04em;color:#4b5563}
.role .tool-name,.role .muted{text-transform:none;letter-spacing:0;font-size:12px}
.tool-name{font-family:ui-monospace,"DejaVu Sans Mono",monospace;color:#92400e}
.reasoning{font-style:italic;color:#374151;background:#f3f0ff;padding:4px 8px;border-radius:4px;
 margin:4px 0;white-space:pre-wrap}
.text{white-space:pre-wrap;margin:4px 0}
.call{margin:4px 0;font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12.5px;background:#fff7e6;
 border:1px solid #f1d9a8;border-radius:4px;padding:4px 8px;white-space:pre-wrap;word-break:break-word}
.call b{color:#92400e}
.frames{display:flex;flex-wrap:wrap;gap:6px;margin:6px 0}
figure{margin:0;text-align:center} figure img{height:110px;width:auto;border-radius:3px;
 border:1px solid #d1d5db;display:block;background:#000}
figcaption{font-size:11px;color:#4b5563;font-family:ui-monospace,"DejaVu Sans Mono",monospace}
.verdict{margin-top:10px;padding:8px 10px;border-radius:6px;font-weight:600}
.verdict.correct{background:#e3f4e6;color:#14532d} .verdict.wrong{background:#fde8e8;color:#7f1d1d}
.verdict.none{background:#eef0f3;color:#374151}
"""

_MIME = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG": "image/png", b"GIF8": "image/gif"}


class ViewerError(ValueError):
    """Nothing to show (no samples, unknown keys); the message says what is available."""


def frame_mime(data: bytes) -> str:
    """The MIME type of an encoded frame, from its magic bytes."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((mime for magic, mime in _MIME.items() if data.startswith(magic)), "application/octet-stream")


def data_uri(data: bytes) -> str:
    return f"data:{frame_mime(data)};base64,{base64.b64encode(data).decode('ascii')}"


def fmt_time(seconds: float) -> str:
    """``h:mm:ss.s`` (or ``m:ss.s`` under an hour)."""
    minutes, secs = divmod(max(0.0, seconds), 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{secs:04.1f}" if hours else f"{minutes}:{secs:04.1f}"


class _SampleView:
    """HTML of one sample; records which frames were shown so none is left out."""

    def __init__(self, sample: Sample, split: str):
        self.sample = sample
        self.record: TrajectoryRecord = sample.record
        self.split = split
        self.shown: set[int] = set()

    def figure(self, index: int, timestamp: float | None = None) -> str:
        self.shown.add(index)
        info = self.record.frames[index] if index < len(self.record.frames) else None
        t = timestamp if timestamp is not None else (info.timestamp_s if info else None)
        label = f"#{index} @ {fmt_time(t)}" if t is not None else f"#{index}"
        crop = f" crop {info.crop}" if info and info.crop else ""
        alt = escape(f"frame {index}" + (f" at {t:.2f} s" if t is not None else "") + crop, quote=True)
        if index >= len(self.sample.frames):
            return f'<figure><figcaption>{escape(label)} (missing)</figcaption></figure>'
        return (f'<figure><img src="{data_uri(self.sample.frames[index])}" alt="{alt}" title="{alt}">'
                f"<figcaption>{escape(label + crop)}</figcaption></figure>")

    def content(self, parts: Iterable) -> str:
        out, figures = [], []
        for part in parts:
            if isinstance(part, TextPart):
                out.append(self._flush(figures) + f'<div class="text">{escape(part.text)}</div>')
                figures = []
            elif isinstance(part, ImagePart):
                figures.append(self.figure(part.frame))
            elif isinstance(part, VideoPart):
                stamps = list(part.timestamps) + [None] * (len(part.frames) - len(part.timestamps))
                figures.extend(self.figure(f, t) for f, t in zip(part.frames, stamps, strict=True))
        return "".join(out) + self._flush(figures)

    @staticmethod
    def _flush(figures: list[str]) -> str:
        return f'<div class="frames">{"".join(figures)}</div>' if figures else ""

    def turn(self, i: int, message: Message) -> str:
        label = escape(message.role)
        if message.role == "tool":
            label = (f'tool result <span class="tool-name">{escape(message.name or "?")}</span> '
                     f'<span class="muted">{escape(message.tool_call_id or "no call id")}</span>')
        body = ""
        if message.reasoning:
            body += f'<div class="reasoning">thinking: {escape(message.reasoning)}</div>'
        body += self.content(message.content)
        for call in message.tool_calls or []:
            args = json.dumps(_readable(call.function.arguments), ensure_ascii=False)
            body += (f'<div class="call">call <b>{escape(call.function.name)}</b>({escape(args)})'
                     f' <span class="muted">{escape(call.id)}</span></div>')
        return (f'<div class="turn {escape(message.role)}"><div class="role">{i}. {label}</div>'
                f"{body}</div>")

    def header(self) -> str:
        r = self.record
        frames = _plural(len(self.sample.frames), "frame")
        meta = (f"split {self.split} · video {r.video.id} ({fmt_time(r.video.duration_s)}, {r.video.width}x"
                f"{r.video.height}, license {r.video.license}) · {frames} · "
                f"kept because {r.provenance.kept_because} · preset {r.provenance.preset or '?'}")
        options = "".join(_option(k, o, k == letter_index(r.answer)) for k, o in enumerate(r.options))
        return (f'<h2>{escape(r.id)}</h2><div class="meta">{escape(meta)}</div>'
                f'<div class="question">{escape(r.question)}</div><ol class="options">{options}</ol>')

    def verdict(self) -> str:
        given, gold = final_answer(self.record), self.record.answer.strip().upper()
        if given is None:
            return f'<div class="verdict none">no final Answer call · gold {escape(gold)}</div>'
        ok = given == gold
        mark = "✓ correct" if ok else "✗ wrong"
        return (f'<div class="verdict {"correct" if ok else "wrong"}">final answer {escape(given)} · gold '
                f"{escape(gold)} · {mark}</div>")

    def leftover(self) -> str:
        rest = [i for i in range(len(self.sample.frames)) if i not in self.shown]
        if not rest:
            return ""
        figures = "".join(self.figure(i) for i in rest)
        return (f'<div class="turn"><div class="role">frames no message references</div>'
                f"{self._flush([figures])}</div>")

    def html(self) -> str:
        turns = "".join(self.turn(i, m) for i, m in enumerate(self.record.messages))
        body = self.header() + turns + self.leftover() + self.verdict()
        return f'<section class="sample" id="s-{escape(self.record.id)}">{body}</section>'


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _option(k: int, text: str, gold: bool) -> str:
    mark = ' <span class="muted">(gold)</span>' if gold else ""
    return f'<li class="{"gold" if gold else ""}"><b>{chr(65 + k)}.</b> {escape(text)}{mark}</li>'


def iter_samples(folder: Path) -> Iterator[tuple[str, Sample]]:
    """(split, sample) for every sample, splits in index order."""
    from cards.stats import iter_split_samples

    for split in DatasetIndex.load(folder).splits:
        for sample in iter_split_samples(folder, split):
            yield split, sample


def select_samples(folder: Path, keys: Sequence[str] | None, n: int) -> list[tuple[str, Sample]]:
    """The samples with ``keys`` (in that order), or the first ``n``."""
    if keys is None:
        chosen = []
        for item in iter_samples(folder):
            if len(chosen) >= n:
                break
            chosen.append(item)
        if not chosen:
            raise ViewerError(f"{folder}: the dataset holds no samples")
        return chosen
    wanted = set(keys)
    found = {s.key: (split, s) for split, s in iter_samples(folder) if s.key in wanted}
    missing = [k for k in keys if k not in found]
    if missing:
        raise ViewerError(f"{folder}: no sample with key {', '.join(missing)} (a key is the name of a "
                          "sample's .json member without the extension)")
    return [found[k] for k in keys]


def render_samples(selected: Sequence[tuple[str, Sample]], title: str) -> str:
    """The page for already-loaded samples."""
    views = [_SampleView(sample, split) for split, sample in selected]
    sections = "".join(v.html() for v in views)
    toc = "".join(
        f'<li><a href="#s-{escape(v.record.id)}">{escape(v.record.id)}</a> '
        f'<span class="muted">{escape(v.record.question[:90])}</span></li>' for v in views)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body><main>"
            f"<h1>{escape(title)}</h1><div class=\"muted\">{len(views)} trajectories · frames embedded; "
            f"this page loads nothing from the network</div><ol class=\"toc\">{toc}</ol>{sections}"
            "</main></body></html>\n")


def render_html(folder: Path | str, keys: Sequence[str] | None = None, n: int = 5) -> str:
    """A self-contained HTML page of the samples ``keys`` of ``folder`` (or its first ``n``)."""
    folder = Path(folder)
    if n < 1 and keys is None:
        raise ViewerError("n must be at least 1")
    selected = select_samples(folder, list(keys) if keys is not None else None, n)
    return render_samples(selected, f"VideoThinker trajectories: {folder.name}")


def _readable(value):
    """Floats as people write them (the stored canonical 0.6000000000000001 shows as 0.6)."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _readable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_readable(v) for v in value]
    return value

"""Subtitles: SRT/WebVTT sidecar parsing and the subtitle track type the tools read."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_TIME = r"(?:(\d+):)?(\d{1,2}):(\d{1,2})[.,](\d{1,3})"
_CUE = re.compile(rf"{_TIME}\s*-->\s*{_TIME}")
_TAG = re.compile(r"<[^>]+>|\{\\[^}]*\}")


@dataclass(frozen=True)
class SubtitleLine:
    start_s: float
    end_s: float
    text: str

    def render(self) -> str:
        return f"[{self.start_s:.1f}s-{self.end_s:.1f}s] {self.text}"


def _seconds(h: str | None, m: str, s: str, frac: str) -> float:
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(frac.ljust(3, "0")[:3]) / 1000


def parse_subtitles(text: str) -> list[SubtitleLine]:
    """Parse SRT or WebVTT text; cues without text are skipped, malformed blocks are ignored."""
    lines: list[SubtitleLine] = []
    for block in re.split(r"\r?\n\s*\r?\n", text.replace("\ufeff", "")):
        rows = block.strip().splitlines()
        for i, row in enumerate(rows):
            match = _CUE.search(row)
            if not match:
                continue
            g = match.groups()
            start, end = _seconds(*g[:4]), _seconds(*g[4:])
            body = " ".join(_TAG.sub("", r).strip() for r in rows[i + 1:] if r.strip())
            if body and end >= start:
                lines.append(SubtitleLine(start, end, body))
            break
    return sorted(lines, key=lambda line: (line.start_s, line.end_s))


def sidecar_subtitles(video: Path) -> Path | None:
    for suffix in (".srt", ".vtt"):
        candidate = video.with_suffix(suffix)
        if candidate.exists():
            return candidate
    return None


def load_subtitles(path: Path) -> list[SubtitleLine]:
    return parse_subtitles(path.read_text(encoding="utf-8", errors="replace"))


def in_interval(lines: list[SubtitleLine], start: float, end: float) -> list[SubtitleLine]:
    return [line for line in lines if line.end_s >= start and line.start_s <= end]

"""Build inputs: the videos (a folder or a list file) and the questions, grouped into per-video jobs."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from dataset_builder.questions import Question

VIDEO_SUFFIXES = {".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v", ".ts", ".flv", ".mpg", ".mpeg"}


class InputError(ValueError):
    pass


@dataclass
class VideoJob:
    """The unit of parallel build work: one video and its questions."""

    video_id: str
    path: Path
    questions: list[Question]
    generate_questions: int = 0  # the teacher writes this many questions (videos that came without any)


def list_videos(source: Path) -> dict[str, Path]:
    """Video id (file stem) -> path, from a folder (recursive) or a text file with one path per line."""
    source = Path(source)
    if source.is_dir():
        paths = sorted(p for p in source.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
    elif source.is_file():
        lines = [ln.strip() for ln in source.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
        paths = [(source.parent / ln).resolve() if not Path(ln).is_absolute() else Path(ln) for ln in lines]
    else:
        raise InputError(f"{source}: no such folder or list file; pass --videos a folder of videos or a .txt list")
    if not paths:
        raise InputError(f"{source}: no video files found (looked for {', '.join(sorted(VIDEO_SUFFIXES))})")
    return {p.stem: p for p in paths}


def video_id(stem: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", stem)


def make_jobs(videos: dict[str, Path], questions: list[Question], videos_root: Path,
              generate_questions: int = 0) -> tuple[list[VideoJob], Counter]:
    """Group questions by video, in a stable order; questions whose video is missing are counted, not lost.

    With ``generate_questions`` N, every video without a question gets a job in which the teacher writes N.
    """
    by_video: dict[Path, list[Question]] = {}
    missing: Counter = Counter()
    for q in questions:
        path = _resolve(q.video, videos, videos_root)
        if path is None:
            missing[q.video] += 1
            continue
        by_video.setdefault(path, []).append(q)
    if generate_questions:
        for path in videos.values():
            by_video.setdefault(path, [])
    jobs = [VideoJob(video_id(p.stem), p, sorted(qs, key=lambda q: q.key), 0 if qs else generate_questions)
            for p, qs in sorted(by_video.items(), key=lambda kv: str(kv[0]))]
    return jobs, missing


def _resolve(name: str, videos: dict[str, Path], root: Path) -> Path | None:
    candidate = Path(name)
    if candidate.is_absolute() and candidate.exists():
        return candidate
    if root.is_dir() and (root / candidate).exists():
        return root / candidate
    return videos.get(candidate.stem)

"""Long-video benchmark readers: annotation files as distributed -> one common ``EvalItem`` list.

Field layouts follow ``shared/BENCHMARKS.md``:

- **MLVU**: raw per-task JSON (``1_plotQA.json``: ``video``, ``duration``, ``question``, ``candidates``,
  ``answer`` = option TEXT, ``question_type``), a folder of them, or the mirror (parquet/JSON/JSONL:
  ``video_name``, ``duration``, ``question`` with options embedded, ``candidates``, ``answer`` = letter,
  ``task_type``, ``question_id``).
- **LVBench**: ``video_info.meta.jsonl``, one video per line: ``key``, ``video_info.duration_minutes``,
  ``qa`` = [{``uid``, ``question`` with "(A) ..." options inline, ``answer`` letter, ``question_type`` list}].
- **Video-MME**: the official nested JSON (``video_id``, ``duration_category``/``duration``, ``url``,
  ``questions`` = [{``question_id``, ``task_type``, ``question``, ``choices``, ``answer``}]) or the flat
  mirror (``videoID``, ``duration``, ``question_id``, ``task_type``, ``question``, ``options`` "A. ...",
  ``answer``).
- **LongVideoBench**: ``lvb_val.json``: ``id``, ``video_path``, ``subtitle_path``, ``correct_choice`` (int),
  ``question``, ``candidates`` (or ``option0``..``option4``), ``duration``, ``duration_group``,
  ``question_category``, ``starting_timestamp_for_subtitles``.

Every reader returns option texts without their "A." / "(A)" prefixes and the gold answer as a letter.
A bad file raises ``BenchmarkError`` naming the file, the item and the problem.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dataset_builder.questions import QuestionError, normalize_answer
from dataset_builder.subtitles import SubtitleLine, load_subtitles

BENCHMARKS = ("mlvu", "lvbench", "videomme", "longvideobench")
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v")
_OPTION_PREFIX = re.compile(r"^\s*\(?([A-Z])[.):]\s*")
_EMBEDDED_OPTIONS = re.compile(r"\n\s*(?:Options?\s*:|\(?A[.)]\s)", re.IGNORECASE)


class BenchmarkError(ValueError):
    """An annotation file that cannot be read; the message names the file, the item and the problem."""


@dataclass(frozen=True)
class EvalItem:
    """One multiple-choice question of a benchmark, in a layout every benchmark maps to."""

    id: str
    video: str  # file name or stem, relative to the videos folder
    question: str  # without the options
    options: tuple[str, ...]  # option texts, no "A." prefixes
    answer_letter: str | None  # gold letter; None when the split hides it
    duration_s: float | None
    task_type: str = ""
    duration_category: str = ""  # Video-MME: short / medium / long
    duration_group: str = ""  # LongVideoBench: 15 / 60 / 600 / 3600
    benchmark: str = ""
    subtitles: str | None = None  # subtitle file named by the annotations, if any
    subtitle_offset_s: float = 0.0  # LongVideoBench: starting_timestamp_for_subtitles

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "options": list(self.options)}


# ------------------------------------------------------------------------------------------- reading


def read_benchmark(bench: str, annotations: Path) -> list[EvalItem]:
    """All items of ``bench`` in ``annotations`` (a file; for MLVU also a folder of per-task JSON files)."""
    reader = READERS.get(bench)
    if reader is None:
        raise BenchmarkError(f"unknown benchmark {bench!r}; choose one of {', '.join(BENCHMARKS)}")
    annotations = Path(annotations)
    if not annotations.exists():
        raise BenchmarkError(f"{annotations}: annotation file does not exist")
    items = reader(annotations)
    if not items:
        raise BenchmarkError(f"{annotations}: no questions found for {bench}; is this the right file?")
    _check_unique(items, annotations)
    return items


def _check_unique(items: list[EvalItem], path: Path) -> None:
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise BenchmarkError(f"{path}: duplicate question id {item.id!r}")
        seen.add(item.id)


def load_records(path: Path) -> list[dict[str, Any]]:
    """Records of a JSON list/object, JSONL or parquet file."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return list(_jsonl(text, path))
    if isinstance(data, dict):
        return [data]
    if not isinstance(data, list):
        raise BenchmarkError(f"{path}: expected a JSON list of objects, got {type(data).__name__}")
    return data


def _jsonl(text: str, path: Path) -> Iterator[dict[str, Any]]:
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise BenchmarkError(f"{path}: line {n} is not valid JSON ({exc.msg})") from None


def _need(record: Any, keys: tuple[str, ...], where: str) -> None:
    if not isinstance(record, dict):
        raise BenchmarkError(f"{where}: expected an object, got {type(record).__name__}")
    missing = [k for k in keys if k not in record]
    if missing:
        raise BenchmarkError(f"{where}: missing fields {missing}")


def strip_option(text: Any) -> str:
    return _OPTION_PREFIX.sub("", str(text)).strip()


def _options(raw: Any, where: str) -> tuple[str, ...]:
    if hasattr(raw, "tolist"):
        raw = raw.tolist()
    if not isinstance(raw, list) or len(raw) < 2:
        raise BenchmarkError(f"{where}: options must be a list of at least two strings, got {raw!r}"[:300])
    return tuple(strip_option(o) for o in raw)


def _letter(answer: Any, options: tuple[str, ...], where: str) -> str | None:
    if answer is None or answer == "":
        return None
    try:
        return normalize_answer(answer, list(options), where)
    except QuestionError as exc:
        raise BenchmarkError(str(exc)) from None


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def question_only(question: str) -> str:
    """The question text without options embedded after it ("\\n(A) ...", "\\nA. ...", "\\nOptions: ...")."""
    match = _EMBEDDED_OPTIONS.search(question)
    return (question[:match.start()] if match else question).strip()


# ---------------------------------------------------------------------------------------------- MLVU


def read_mlvu(path: Path) -> list[EvalItem]:
    files = sorted(p for p in path.iterdir() if p.suffix in (".json", ".jsonl", ".parquet")) if path.is_dir() \
        else [path]
    items: list[EvalItem] = []
    for file in files:
        task_from_name = re.sub(r"^\d+_", "", file.stem)
        items += [_mlvu_item(r, f"{file}: item {i}", task_from_name) for i, r in enumerate(load_records(file))]
    return items


def _mlvu_item(r: dict[str, Any], where: str, task_from_name: str) -> EvalItem:
    mirror = "video_name" in r
    _need(r, ("video_name" if mirror else "video", "question", "candidates"), where)
    options = _options(r["candidates"], where)
    video = str(r["video_name"] if mirror else r["video"])
    task = str(r.get("task_type") or r.get("question_type") or task_from_name)
    qid = r.get("question_id") or f"{task}/{Path(video).stem}/{_digest(r['question'])}"
    return EvalItem(id=str(qid), video=video, question=question_only(str(r["question"])), options=options,
                    answer_letter=_letter(r.get("answer"), options, where), duration_s=_float(r.get("duration")),
                    task_type=task, benchmark="mlvu")


def _digest(text: Any) -> str:
    import hashlib

    return hashlib.sha1(str(text).encode()).hexdigest()[:10]


# ------------------------------------------------------------------------------------------- LVBench


def read_lvbench(path: Path) -> list[EvalItem]:
    items: list[EvalItem] = []
    for i, video in enumerate(load_records(path)):
        where = f"{path}: video {i}"
        _need(video, ("key", "qa"), where)
        info = video.get("video_info") or {}
        minutes = _float(info.get("duration_minutes")) if isinstance(info, dict) else None
        duration = minutes * 60 if minutes is not None else _float(info.get("duration") if info else None)
        for j, qa in enumerate(video["qa"]):
            items.append(_lvbench_item(video, qa, duration, f"{where} question {j}"))
    return items


def _lvbench_item(video: dict[str, Any], qa: dict[str, Any], duration: float | None, where: str) -> EvalItem:
    _need(qa, ("question", "answer"), where)
    question, options = split_inline_options(str(qa["question"]), where)
    qtype = qa.get("question_type") or []
    qtype = qtype if isinstance(qtype, list) else [qtype]
    uid = qa.get("uid", _digest(qa["question"]))
    return EvalItem(id=f"{video['key']}_{uid}", video=str(video["key"]), question=question, options=options,
                    answer_letter=_letter(qa["answer"], options, where), duration_s=duration,
                    task_type="|".join(str(t) for t in qtype), benchmark="lvbench")


def split_inline_options(text: str, where: str = "question") -> tuple[str, tuple[str, ...]]:
    """"What ...?\\n(A) x\\n(B) y" -> ("What ...?", ("x", "y")); options are found in letter order."""
    starts: list[tuple[int, int]] = []  # (start of "(L)", start of the option text)
    position = 0
    for k in range(26):
        letter = chr(ord("A") + k)
        match = re.compile(rf"(?:^|(?<=\s))\({letter}\)\s*").search(text, position)
        if match is None:
            break
        starts.append((match.start(), match.end()))
        position = match.end()
    if len(starts) < 2:
        raise BenchmarkError(f"{where}: no inline options '(A) ... (B) ...' in the question {text[:120]!r}")
    ends = [s for s, _ in starts[1:]] + [len(text)]
    options = tuple(text[body:end].strip() for (_, body), end in zip(starts, ends))
    return text[:starts[0][0]].strip(), options


# ------------------------------------------------------------------------------------------ Video-MME


def read_videomme(path: Path) -> list[EvalItem]:
    items: list[EvalItem] = []
    for i, record in enumerate(load_records(path)):
        where = f"{path}: item {i}"
        if isinstance(record, dict) and "questions" in record:
            items += [_videomme_item(record, q, f"{where} question {j}") for j, q in enumerate(record["questions"])]
        else:
            items.append(_videomme_item(record, record, where))
    return items


def _videomme_item(video: dict[str, Any], q: dict[str, Any], where: str) -> EvalItem:
    _need(q, ("question_id", "question", "answer"), where)
    raw = q.get("options", q.get("choices"))
    if raw is None:
        raise BenchmarkError(f"{where}: missing fields ['options' or 'choices']")
    options = _options(raw, where)
    category = str(video.get("duration_category") or video.get("duration") or "")
    return EvalItem(id=str(q["question_id"]), video=_videomme_stem(video), question=str(q["question"]).strip(),
                    options=options, answer_letter=_letter(q["answer"], options, where), duration_s=None,
                    task_type=str(q.get("task_type", "")), duration_category=category, benchmark="videomme")


def _videomme_stem(video: dict[str, Any]) -> str:
    """The file stem of the .mp4/.srt: ``videoID`` (mirror), else the YouTube id in ``url``, else ``video_id``."""
    if video.get("videoID"):
        return str(video["videoID"])
    match = re.search(r"[?&]v=([\w-]+)", str(video.get("url", "")))
    return match.group(1) if match else str(video.get("video_id", ""))


# ------------------------------------------------------------------------------------- LongVideoBench


def read_longvideobench(path: Path) -> list[EvalItem]:
    return [_lvb_item(r, f"{path}: item {i}") for i, r in enumerate(load_records(path))]


def _lvb_item(r: dict[str, Any], where: str) -> EvalItem:
    _need(r, ("id", "video_path", "question"), where)
    raw = r.get("candidates")
    if raw is None:
        raw = [r[f"option{i}"] for i in range(10) if r.get(f"option{i}") not in (None, "", "N/A")]
    options = _options(raw, where)
    group = r.get("duration_group")
    return EvalItem(id=str(r["id"]), video=str(r["video_path"]), question=str(r["question"]).strip(), options=options,
                    answer_letter=_letter(r.get("correct_choice"), options, where),
                    duration_s=_float(r.get("duration")),
                    task_type=str(r.get("question_category", "")), duration_group="" if group is None else str(group),
                    benchmark="longvideobench", subtitles=r.get("subtitle_path") or None,
                    subtitle_offset_s=_float(r.get("starting_timestamp_for_subtitles")) or 0.0)


READERS: dict[str, Callable[[Path], list[EvalItem]]] = {
    "mlvu": read_mlvu, "lvbench": read_lvbench, "videomme": read_videomme, "longvideobench": read_longvideobench,
}


# -------------------------------------------------------------------------------- videos and subtitles


class VideoResolver:
    """Finds an item's video under a folder: by relative path, by name, or by stem with a video extension."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._by_name: dict[str, Path] | None = None

    def find(self, name: str) -> Path | None:
        direct = self.root / name
        if direct.is_file():
            return direct
        for ext in VIDEO_EXTENSIONS:
            if (self.root / f"{name}{ext}").is_file():
                return self.root / f"{name}{ext}"
        index = self._index()
        return index.get(Path(name).name) or index.get(Path(name).stem)

    def _index(self) -> dict[str, Path]:
        if self._by_name is None:
            self._by_name = {}
            for path in sorted(self.root.rglob("*")):
                if path.suffix.lower() in VIDEO_EXTENSIONS and path.is_file():
                    self._by_name.setdefault(path.name, path)
                    self._by_name.setdefault(path.stem, path)
        return self._by_name


def find_subtitles(item: EvalItem, video_path: Path, folders: list[Path]) -> Path | None:
    """The subtitle file of an item: the one its annotations name, else ``<stem>.srt/.vtt`` next to the
    video or in one of ``folders`` (e.g. Video-MME's ``subtitle/``)."""
    names = [item.subtitles] if item.subtitles else []
    names += [f"{video_path.stem}{ext}" for ext in (".srt", ".vtt")]
    dirs = [video_path.parent, *folders]
    for name in names:
        for folder in dirs:
            candidate = folder / name
            if candidate.is_file():
                return candidate
    return None


def read_subtitles(path: Path, offset_s: float = 0.0) -> list[SubtitleLine]:
    """SRT/WebVTT, or LongVideoBench JSON ({timestamp: [s, e], text} or {start, end: "HH:MM:SS.f", line})."""
    if path.suffix.lower() != ".json":
        return load_subtitles(path)
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BenchmarkError(f"{path}: subtitles are not valid JSON ({exc.msg})") from None
    lines = [line for e in entries if (line := _json_subtitle(e, offset_s)) is not None]
    return sorted(lines, key=lambda s: (s.start_s, s.end_s))


def _json_subtitle(entry: Any, offset_s: float) -> SubtitleLine | None:
    if not isinstance(entry, dict):
        return None
    if "timestamp" in entry:
        start, end = (list(entry["timestamp"]) + [None, None])[:2]
        text = entry.get("text", "")
    else:
        start, end, text = _clock(entry.get("start")), _clock(entry.get("end")), entry.get("line", "")
    start = _float(start)
    if start is None or not str(text).strip():
        return None
    end = _float(end)
    end = start if end is None else end
    return SubtitleLine(max(0.0, start - offset_s), max(0.0, end - offset_s), str(text).strip())


def _clock(value: Any) -> float | None:
    """"HH:MM:SS.f" (or a number) -> seconds."""
    if value is None or isinstance(value, (int, float)):
        return value
    parts = str(value).strip().split(":")
    try:
        return sum(float(p) * 60 ** k for k, p in enumerate(reversed(parts)))
    except ValueError:
        return None

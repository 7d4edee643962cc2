"""Multiple-choice questions in: our JSONL, plus importers for the annotation layouts people already have.

Every importer yields ``Question`` with the answer normalized to a letter; a bad item raises
``QuestionError`` naming the file, the item and the problem.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from validation.record import KEY_RE, option_letter

_OPTION_PREFIX = re.compile(r"^\(?([A-Z])[.):]\s*")


class QuestionError(ValueError):
    pass


@dataclass(frozen=True)
class Question:
    id: str
    video: str
    question: str
    options: list[str]
    answer: str  # letter
    source: str = "jsonl"

    @property
    def key(self) -> str:
        return re.sub(r"[^A-Za-z0-9_-]", "_", self.id)


def normalize_answer(answer: Any, options: list[str], where: str) -> str:
    """A letter, a 0-based index or the option text -> the option letter."""
    if isinstance(answer, bool):
        raise QuestionError(f"{where}: answer {answer!r} is not a letter, an index or an option text")
    if isinstance(answer, int):
        if 0 <= answer < len(options):
            return option_letter(answer)
        raise QuestionError(f"{where}: answer index {answer} is outside the {len(options)} options")
    if isinstance(answer, str):
        text = answer.strip()
        if len(text) == 1 and text.upper().isalpha() and ord(text.upper()) - 65 < len(options):
            return text.upper()
        stripped = [_OPTION_PREFIX.sub("", o).strip() for o in options]
        for i, option in enumerate(stripped):
            if text == option or _OPTION_PREFIX.sub("", text).strip() == option:
                return option_letter(i)
    raise QuestionError(f"{where}: answer {answer!r} matches no option; give a letter, a 0-based index "
                        "or the exact option text")


def _question(item: dict[str, Any], where: str, *, id_key: str = "id", video_key: str = "video",
              options_key: str = "options", answer_key: str = "answer", source: str = "jsonl") -> Question:
    missing = [k for k in (id_key, video_key, "question", options_key, answer_key) if k not in item]
    if missing:
        raise QuestionError(f"{where}: missing fields {missing}")
    options = item[options_key]
    if not isinstance(options, list) or len(options) < 2 or not all(isinstance(o, str) for o in options):
        raise QuestionError(f"{where}: {options_key!r} must be a list of at least two strings")
    options = [_OPTION_PREFIX.sub("", o).strip() for o in options]
    answer = normalize_answer(item[answer_key], options, where)
    qid = str(item[id_key])
    return Question(id=qid, video=str(item[video_key]), question=str(item["question"]).strip(), options=options,
                    answer=answer, source=source)


def read_questions(path: Path, layout: str = "auto") -> list[Question]:
    """Read a questions file; ``layout`` is jsonl, cgbench, videomme, mlvu, longvideobench or auto."""
    path = Path(path)
    if not path.exists():
        raise QuestionError(f"{path}: questions file does not exist")
    items = list(_items(path))
    layout = _detect(items) if layout == "auto" else layout
    importer = IMPORTERS.get(layout)
    if importer is None:
        raise QuestionError(f"{path}: unknown layout {layout!r}; choose one of {', '.join(IMPORTERS)}")
    questions = [q for i, item in enumerate(items) for q in importer(item, f"{path}: item {i}")]
    seen: set[str] = set()
    for q in questions:
        if q.key in seen:
            raise QuestionError(f"{path}: duplicate question id {q.id!r}")
        seen.add(q.key)
        if not KEY_RE.match(q.key):
            raise QuestionError(f"{path}: question id {q.id!r} cannot become a sample key")
    return questions


def _items(path: Path) -> Iterator[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = None
    if isinstance(data, list):
        yield from data
        return
    if isinstance(data, dict):
        yield data
        return
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise QuestionError(f"{path}: line {n} is not valid JSON ({exc.msg})") from None


def _detect(items: list[dict[str, Any]]) -> str:
    first = items[0] if items and isinstance(items[0], dict) else {}
    if "right_answer" in first and "choices" in first:
        return "cgbench"
    if "questions" in first and "video_id" in first:
        return "videomme"
    if "correct_choice" in first:
        return "longvideobench"
    if "candidates" in first and "question_type" in first:
        return "mlvu"
    return "jsonl"


def _jsonl(item, where):
    yield _question(item, where)


def _cgbench(item, where):
    video = item.get("video_uid", "")
    yield _question({**item, "video": f"{video}.mp4"}, where, id_key="qid", options_key="choices",
                    answer_key="right_answer", source="cgbench")


def _videomme(item, where):
    if "questions" not in item:  # flat mirror layout
        yield _question({**item, "video": f"{item.get('videoID', item.get('video_id'))}.mp4"}, where,
                        id_key="question_id", source="videomme")
        return
    for j, q in enumerate(item["questions"]):
        yield _question({**q, "video": f"{item['video_id']}.mp4"}, f"{where} question {j}", id_key="question_id",
                        options_key="choices", source="videomme")


def _mlvu(item, where):
    digest = hashlib.sha1(str(item.get("question", "")).encode()).hexdigest()[:10]
    qid = item.get("question_id") or f"{Path(str(item.get('video', ''))).stem}-{digest}"
    yield _question({**item, "id": qid}, where, options_key="candidates", source="mlvu")


def _longvideobench(item, where):
    options = item.get("candidates") or [item[f"option{i}"] for i in range(5) if item.get(f"option{i}")]
    yield _question({**item, "candidates": options}, where, video_key="video_path", options_key="candidates",
                    answer_key="correct_choice", source="longvideobench")


IMPORTERS = {"jsonl": _jsonl, "cgbench": _cgbench, "videomme": _videomme, "mlvu": _mlvu,
             "longvideobench": _longvideobench}

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


def read_questions(path: Path, layout: str = "auto", skipped: list[str] | None = None) -> list[Question]:
    """Read a questions file; ``layout`` is jsonl, cgbench, videomme, mlvu, longvideobench or auto.

    Strict by default: the first bad item raises ``QuestionError``. Given a ``skipped`` list, bad items
    (unparseable lines, missing fields, an answer that is not an option, duplicate ids) are skipped and
    each one's message (file, item or line, problem) is appended there, so a build goes on without them.
    """
    path = Path(path)
    if not path.exists():
        raise QuestionError(f"{path}: questions file does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise QuestionError(f"{path}: not UTF-8 text ({exc.reason}); save the file as UTF-8") from None
    items = [(where, item) for where, item in _items(text, path) if _keep(item, skipped)]
    layout = _detect([item for _, item in items]) if layout == "auto" else layout
    importer = IMPORTERS.get(layout)
    if importer is None:
        raise QuestionError(f"{path}: unknown layout {layout!r}; choose one of {', '.join(IMPORTERS)}")
    questions: list[Question] = []
    seen: set[str] = set()
    for where, item in items:
        try:
            if not isinstance(item, dict):
                raise QuestionError(f"{where}: expected a JSON object, got {type(item).__name__}")
            for q in importer(item, where):
                _check_id(q, seen, where)
                questions.append(q)
        except (AttributeError, KeyError, TypeError) as exc:
            error = QuestionError(f"{where}: does not fit the {layout} layout ({type(exc).__name__}: {exc})")
            if skipped is None:
                raise error from None
            skipped.append(str(error))
        except QuestionError as exc:
            if skipped is None:
                raise
            skipped.append(str(exc))
    return questions


def _check_id(q: Question, seen: set[str], where: str) -> None:
    if not KEY_RE.match(q.key):
        raise QuestionError(f"{where}: question id {q.id!r} cannot become a sample key")
    if q.key in seen:
        raise QuestionError(f"{where}: duplicate question id {q.id!r} (the first one is kept)")
    seen.add(q.key)


def _keep(item: Any, skipped: list[str] | None) -> bool:
    if not isinstance(item, QuestionError):
        return True
    if skipped is None:
        raise item
    skipped.append(str(item))
    return False


def _items(text: str, path: Path) -> Iterator[tuple[str, Any]]:
    """(where, item) for a JSON list/object file or JSONL; a bad JSONL line yields a QuestionError."""
    try:
        data = None if path.suffix == ".jsonl" else json.loads(text)
    except json.JSONDecodeError:
        data = None
    if isinstance(data, list):
        yield from ((f"{path}: item {i}", item) for i, item in enumerate(data))
        return
    if isinstance(data, dict):
        yield f"{path}: item 0", data
        return
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                yield f"{path}: line {n}", json.loads(line)
            except json.JSONDecodeError as exc:
                yield f"{path}: line {n}", QuestionError(f"{path}: line {n} is not valid JSON ({exc.msg})")


def _detect(items: list[Any]) -> str:
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

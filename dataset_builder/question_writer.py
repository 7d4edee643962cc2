"""``--generate-questions N``: the teacher writes multiple-choice questions from a video's captions.

For videos that come without questions. The teacher sees the global caption and the timed clip captions
and returns a JSON list of {question, options, answer}; each item is checked (2+ distinct options, the
answer a valid letter) and the rest are counted as invalid. Generated questions say so in provenance
(``question_source = "generated"``).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from dataset_builder.backends import BackendError, ChatBackend
from dataset_builder.questions import Question, QuestionError, normalize_answer
from dataset_builder.video_index import VideoIndex

WRITER_SYSTEM = (
    "QUESTION WRITER. You write multiple-choice questions about a long video from its captions. Each question "
    "must be answerable only by looking at a specific moment of the video. Reply with a JSON list only: "
    '[{"question": "...", "options": ["...", "...", "...", "..."], "answer": "A"}].'
)
_JSON_LIST = re.compile(r"\[.*\]", re.DOTALL)
MAX_CAPTION_CHARS = 24_000


def writer_prompt(index: VideoIndex, n: int) -> str:
    clips = "\n".join(f"[{a:.1f}s-{b:.1f}s] {c}" for (a, b), c in zip(index.clips, index.clip_captions))
    return (f"Write {n} questions with 4 options each.\n\nGlobal caption:\n{index.global_caption}\n\n"
            f"Clip captions:\n{clips}")[:MAX_CAPTION_CHARS]


def generate_questions(index: VideoIndex, teacher: ChatBackend, n: int, seed: int, stats: Counter,
                       max_tokens: int = 2048) -> list[Question]:
    """Up to ``n`` checked questions for ``index``; every rejected item is counted by reason."""
    messages = [{"role": "system", "content": WRITER_SYSTEM}, {"role": "user", "content": writer_prompt(index, n)}]
    try:
        reply = teacher.chat(messages, temperature=0.7, seed=seed, max_tokens=max_tokens)
    except BackendError:
        stats["generated_invalid:backend_error"] += n
        return []
    items = _parse_list(reply.content)
    if items is None:
        stats["generated_invalid:not_a_json_list"] += n
        return []
    if len(items) < n:
        stats["generated_invalid:fewer_than_asked"] += n - len(items)
    questions = []
    for i, item in enumerate(items[:n]):
        try:
            questions.append(_question(index, i, item))
        except QuestionError as exc:
            stats[f"generated_invalid:{str(exc).split(': ', 1)[-1][:60]}"] += 1
    stats["generated_questions"] += len(questions)
    return questions


def _parse_list(text: str) -> list[Any] | None:
    match = _JSON_LIST.search(text or "")
    try:
        items = json.loads(match.group(0)) if match else None
    except json.JSONDecodeError:
        return None
    return items if isinstance(items, list) else None


def _question(index: VideoIndex, i: int, item: Any) -> Question:
    where = f"{index.video_id}: generated question {i}"
    if not isinstance(item, dict) or not isinstance(item.get("question"), str):
        raise QuestionError(f"{where}: not an object with a question")
    options = item.get("options")
    if not isinstance(options, list) or len(options) < 2 or not all(isinstance(o, str) and o.strip() for o in options):
        raise QuestionError(f"{where}: needs at least two non-empty options")
    if len({o.strip().lower() for o in options}) != len(options):
        raise QuestionError(f"{where}: options repeat")
    answer = normalize_answer(item.get("answer"), options, where)
    return Question(id=f"gen-{index.video_id}-{i}", video=index.path, question=item["question"].strip(),
                    options=[o.strip() for o in options], answer=answer, source="generated")

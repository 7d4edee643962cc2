"""The stand-in teacher: an honest test double for the 235B teacher, behind the same ChatBackend protocol.

It cannot run the paper's model here, so it plays the loop mechanically: retrieve clips with the
question, zoom into the best one, read its subtitles, then answer with the option whose words overlap
most with what it observed (sampled at the given temperature, so k samples differ). It writes its
calls as Hermes ``<tool_call>`` text, the format real servers return. Only the ``tiny`` preset uses it;
records built with it say so in provenance.
"""

from __future__ import annotations

import json
import math
import random
import re
from typing import Any

from dataset_builder.backends import ChatReply

_WORD = re.compile(r"[a-z0-9]+")
_INTERVAL = re.compile(r"\[(\d+(?:\.\d+)?)s, (\d+(?:\.\d+)?)s\]")
_OPTION = re.compile(r"^([A-Z])\. (.*)$", re.MULTILINE)


class StandinTeacher:
    name = "standin-teacher"

    def chat(self, messages: list[dict[str, Any]], *, tools=None, images=None, temperature: float = 0.0,
             seed: int = 0, max_tokens: int = 512) -> ChatReply:
        rng = random.Random(seed)
        if _text(messages[0]).startswith("QUESTION WRITER"):
            return _write_questions(_text(messages[-1]), rng)
        names = {t["function"]["name"] for t in tools or []}
        question = _text(messages[1])
        calls_made = [m for m in messages if m["role"] == "assistant"]
        observed = " ".join(_text(m) for m in messages if m["role"] == "tool")
        step = len(calls_made)
        if step == 0 and "ClipRetrieval" in names:
            return _call("I should find where the question is answered.", "ClipRetrieval",
                         {"query": question.splitlines()[0][:200], "top_k": 3})
        intervals = _INTERVAL.findall(observed)
        if step == 1 and intervals and "CaptionZoom" in names:
            start, end = map(float, intervals[rng.randrange(min(2, len(intervals)))])
            return _call("Let me look at this clip closely.", "CaptionZoom", {"interval": [start, end]})
        if step == 2 and intervals and "SubtitleZoom" in names:
            start, end = map(float, intervals[0])
            return _call("What is said there may help.", "SubtitleZoom", {"interval": [start, end]})
        return _call("I have enough evidence to answer.", "Answer",
                     {"answer": _choose(question, observed, temperature, rng)})


class StandinSummarizer:
    name = "standin-summarizer"

    def chat(self, messages, *, tools=None, images=None, temperature=0.0, seed=0, max_tokens=512) -> ChatReply:
        text = _text(messages[-1])
        return ChatReply(content=" ".join(text.split()[:max_tokens // 4]))


_CLIP_LINE = re.compile(r"^\[(\d+(?:\.\d+)?)s-(\d+(?:\.\d+)?)s\] (.*)$", re.MULTILINE)
_COUNT = re.compile(r"Write (\d+) questions")


def _write_questions(prompt: str, rng: random.Random) -> ChatReply:
    """Mechanical questions: "what is described from a to b?", options drawn from other clips' captions."""
    clips = _CLIP_LINE.findall(prompt)
    wanted = int(m.group(1)) if (m := _COUNT.search(prompt)) else 1
    items = []
    for start, end, caption in rng.sample(clips, min(wanted, len(clips))):
        distractors = sorted({c for _, _, c in clips if c != caption})[:3] or ["nothing is shown"]
        options = [caption, *distractors]
        rng.shuffle(options)
        items.append({"question": f"What is shown between {start}s and {end}s?", "options": options,
                      "answer": options.index(caption)})
    return ChatReply(content=json.dumps(items))


def _choose(question: str, observed: str, temperature: float, rng: random.Random) -> str:
    options = _OPTION.findall(question)
    if not options:
        return "A"
    seen = set(_WORD.findall(observed.lower()))
    scores = [len(seen & set(_WORD.findall(text.lower()))) for _, text in options]
    t = max(temperature, 1e-3)
    weights = [math.exp((s - max(scores)) / t) for s in scores]
    return rng.choices([letter for letter, _ in options], weights=weights)[0]


def _call(thought: str, name: str, arguments: dict[str, Any]) -> ChatReply:
    body = json.dumps({"name": name, "arguments": arguments})
    return ChatReply(content=f"<think>{thought}</think>\n<tool_call>{body}</tool_call>")


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    return " ".join(p.get("text", "") for p in content or [] if isinstance(p, dict))

"""Prompts for multiple-choice answers, answer extraction from the FINAL reply, and answer confidence.

Only the final reply of a trajectory is scored: reasoning and tool calls before it mention letters too.
Within that reply, in order of trust:

1. an ``Answer`` tool call (Hermes ``<tool_call>`` text or an OpenAI ``tool_calls`` entry), the last one;
2. an explicit phrase outside ``<think>``: "The best answer is X", "Answer: (X)", "the correct answer is X";
3. a reply that is just a letter ("B", "(B)", "B.", "B. the dog") or exactly one option's text;
4. the last standalone capital letter outside ``<think>`` that names an option (skipping "A"/"I" used as a
   word, as in "A man ..."), only with ``lenient=True``.

Each match keeps the character span of the letter in the reply, so the confidence of the answer can be
computed from the probabilities of exactly the tokens that wrote it.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from validation.record import option_letter

_TOOL_CALL = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
_ANSWER_ARG = re.compile(r'"answer"\s*:\s*"\s*\(?([A-Za-z])\)?\s*"')
_PHRASE = re.compile(r"\banswer\s*(?:is|:)\s*(?:option\s*)?:?\s*[*(\[]*\s*([A-Z])\b(?![\w'-])", re.IGNORECASE)
_BARE = re.compile(r"^\s*[*(\[]*([A-Z])(?:[)\].:*]|\s*$)")
_STANDALONE = re.compile(r"(?<![\w'-])\(?([A-Z])\)?(?![\w'-])")

DIRECT_PROMPT = ("Select the best answer to the following multiple-choice question based on the video. "
                 "Respond with only the letter ({letters}) of the correct option.\n{question}\n{options}\n"
                 "The best answer is:")


@dataclass(frozen=True)
class AnswerMatch:
    letter: str
    start: int | None  # span of the letter in the reply text; None when it came from structured tool calls
    end: int | None
    how: str  # tool_call | phrase | bare | option_text | last_letter


def letters(n: int) -> str:
    return ", ".join(option_letter(i) for i in range(n))


def format_options(options: list[str] | tuple[str, ...]) -> str:
    return "\n".join(f"{option_letter(i)}. {o}" for i, o in enumerate(options))


def direct_prompt(question: str, options: list[str] | tuple[str, ...]) -> str:
    """The Video-MME-style prompt for answering at once with a letter."""
    return DIRECT_PROMPT.format(letters=letters(len(options)), question=question, options=format_options(options))


def extract_answer(text: str | None, options: list[str] | tuple[str, ...],
                   tool_calls: list[dict[str, Any]] | None = None, lenient: bool = True) -> AnswerMatch | None:
    """The answer letter of a final reply, or None; see the module docstring for the rules."""
    text = text or ""
    n = len(options)
    valid = {option_letter(i) for i in range(n)}
    match = _from_openai_calls(tool_calls or [], valid) or _from_hermes_calls(text, valid)
    if match is not None:
        return match
    final = _final_text(text)
    return (_last(_PHRASE, final, valid, "phrase") or _bare(final, valid) or _option_text(final, options)
            or (_last_standalone(final, valid) if lenient else None))


def _from_openai_calls(calls: list[dict[str, Any]], valid: set[str]) -> AnswerMatch | None:
    for call in reversed(calls):
        function = call.get("function", call) if isinstance(call, dict) else {}
        if function.get("name") != "Answer":
            continue
        args = function.get("arguments")
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except json.JSONDecodeError:
                continue
        letter = str((args or {}).get("answer", "")).strip("() ").upper()
        if letter in valid:
            return AnswerMatch(letter, None, None, "tool_call")
    return None


def _from_hermes_calls(text: str, valid: set[str]) -> AnswerMatch | None:
    for call in reversed(list(_TOOL_CALL.finditer(text))):
        body = call.group(1)
        try:
            obj = json.loads(body)
        except json.JSONDecodeError:
            continue
        if not isinstance(obj, dict) or obj.get("name") != "Answer":
            continue
        arg = _ANSWER_ARG.search(body)
        if arg and arg.group(1).upper() in valid:
            start = call.start(1) + arg.start(1)
            return AnswerMatch(arg.group(1).upper(), start, start + 1, "tool_call")
    return None


def _final_text(text: str) -> str:
    """The reply with reasoning and tool-call blocks blanked out (same length: spans stay valid)."""
    blank = _blank(text, re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL))
    if "</think>" in blank:  # a reply that starts inside an unopened think block
        cut = blank.rindex("</think>") + len("</think>")
        blank = " " * cut + blank[cut:]
    return _blank(blank, _TOOL_CALL)


def _blank(text: str, pattern: re.Pattern[str]) -> str:
    return pattern.sub(lambda m: " " * len(m.group(0)), text)


def _last(pattern: re.Pattern[str], text: str, valid: set[str], how: str) -> AnswerMatch | None:
    for m in reversed(list(pattern.finditer(text))):
        if m.group(1) in valid:
            return AnswerMatch(m.group(1), m.start(1), m.end(1), how)
    return None


def _bare(text: str, valid: set[str]) -> AnswerMatch | None:
    m = _BARE.match(text)
    if m and m.group(1) in valid:
        return AnswerMatch(m.group(1), m.start(1), m.end(1), "bare")
    return None


def _option_text(text: str, options: list[str] | tuple[str, ...]) -> AnswerMatch | None:
    stripped = text.strip().rstrip(".").strip().lower()
    for i, option in enumerate(options):
        if stripped and stripped == option.strip().rstrip(".").lower():
            start = text.index(text.strip())
            return AnswerMatch(option_letter(i), start, start + len(text.strip()), "option_text")
    return None


def _last_standalone(text: str, valid: set[str]) -> AnswerMatch | None:
    for m in reversed(list(_STANDALONE.finditer(text))):
        letter = m.group(1)
        if letter not in valid:
            continue
        if letter in "AI" and re.match(r"\s+[a-z]", text[m.end():]) and not m.group(0).startswith("("):
            continue  # "A man ...", "I think ...": a word, not an option
        return AnswerMatch(letter, m.start(1), m.end(1), "last_letter")
    return None


# -------------------------------------------------------------------------------------------- confidence


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token: its character span in the reply text and its log-probability."""

    start: int
    end: int
    logprob: float


def answer_confidence(match: AnswerMatch | None, tokens: list[TokenLogprob] | None) -> float | None:
    """Geometric mean of the probabilities of the tokens that wrote the answer letter (overlapping its span)."""
    if match is None or not tokens:
        return None
    if match.start is None:  # a structured tool call: its tokens are not in the reply text
        return None
    hits = [t for t in tokens if t.start < match.end and t.end > match.start]
    if not hits:
        return None
    return math.exp(sum(t.logprob for t in hits) / len(hits))


def token_spans(pieces: list[str], logprobs: list[float]) -> list[TokenLogprob]:
    """Consecutive text pieces (one per token) -> spans in their concatenation."""
    out, position = [], 0
    for piece, logprob in zip(pieces, logprobs):
        out.append(TokenLogprob(position, position + len(piece), logprob))
        position += len(piece)
    return out

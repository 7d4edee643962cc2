"""The teacher's loop in caption space (PAPER.md "Synthesis details") and the filter over its episodes.

question + options + global caption + tool specs -> reason -> tool call -> caption-space observation,
at most ``max_steps`` steps, then a forced answer. Invalid calls get an error observation the teacher
can recover from, and are counted.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from dataset_builder.backends import BackendError, ChatBackend
from dataset_builder.executors import CaptionSpaceTools, execute
from dataset_builder.questions import Question
from dataset_builder.toolcall_parse import parse_turn
from dataset_builder.tools import ANSWER, CAPTION_SPACE_TOOLS, ToolArgumentError
from validation.record import option_letter

TEACHER_SYSTEM = (
    "You answer a multiple-choice question about a long video you cannot see. You only get text: a global "
    "caption, and what your tools return. Think step by step inside <think></think>, then call exactly one "
    "tool per turn. Call Answer with the option letter when you are sure."
)
FORCE_ANSWER = "You have used all your steps. Call Answer now with the letter of the best option."


@dataclass
class Episode:
    question_id: str
    sample: int
    messages: list[dict[str, Any]]
    answer: str | None
    status: str  # answered | no_answer | backend_error
    invalid_calls: int = 0
    steps: int = 0
    seed: int = 0

    def signature(self) -> str:
        calls = [(c["function"]["name"], c["function"]["arguments"]) for m in self.messages
                 for c in m.get("tool_calls") or []]
        return json.dumps(calls, sort_keys=True)


def question_prompt(q: Question, global_caption: str | None) -> str:
    options = "\n".join(f"{option_letter(i)}. {o}" for i, o in enumerate(q.options))
    prompt = f"{q.question}\nOptions:\n{options}"
    if global_caption is not None:
        prompt += f"\n\nGlobal caption of the video:\n{global_caption}"
    return prompt


def run_episode(q: Question, tools: CaptionSpaceTools, teacher: ChatBackend, *, sample: int, max_steps: int,
                temperature: float, seed: int, max_tokens: int = 1024) -> Episode:
    specs = [t.openai() for t in CAPTION_SPACE_TOOLS]
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": TEACHER_SYSTEM},
        {"role": "user", "content": question_prompt(q, tools.index.global_caption)},
    ]
    episode = Episode(q.id, sample, messages, None, "no_answer", seed=seed)
    for step in range(max_steps + 1):
        forced = step == max_steps
        if forced:
            messages.append({"role": "user", "content": FORCE_ANSWER})
        try:
            reply = teacher.chat(messages, tools=[ANSWER.openai()] if forced else specs, temperature=temperature,
                                 seed=seed * 1000 + step, max_tokens=max_tokens)
        except BackendError:
            episode.status = "backend_error"
            return episode
        episode.steps = step + 1
        if _take_turn(episode, reply, tools, step, forced):
            return episode
    return episode


def _take_turn(episode: Episode, reply, tools: CaptionSpaceTools, step: int, forced: bool) -> bool:
    """Append the assistant turn and its observations; True when the episode has ended."""
    parsed = parse_turn(reply.content, reply.tool_calls, reply.reasoning)
    calls = parsed.calls[:1]  # one tool per turn
    turn: dict[str, Any] = {"role": "assistant", "content": parsed.text, "reasoning": parsed.reasoning}
    turn["tool_calls"] = [{"id": f"call_{step}", "type": "function",
                           "function": {"name": c.name, "arguments": c.arguments}} for c in calls]
    episode.messages.append(turn)
    if not calls:
        episode.invalid_calls += 1
        error = "; ".join(parsed.errors) or "no tool call found"
        episode.messages.append({"role": "user", "content": f"Error: {error}. Call one tool, or Answer."})
        return forced
    call = calls[0]
    if _non_finite(call.arguments):  # Python's json accepts NaN/Infinity; no tool can use them
        return _error(episode, f"call_{step}", f"{call.name}: arguments must be finite numbers (no NaN or "
                      "Infinity)", forced)
    if call.name == ANSWER.name:
        try:
            letter = ANSWER.validate(call.arguments)["answer"]
        except ToolArgumentError as exc:
            return _error(episode, f"call_{step}", str(exc), forced)
        episode.answer, episode.status = letter, "answered"
        return True
    if forced:
        episode.invalid_calls += 1
        return True
    if _repeats(episode, call):
        return _error(episode, f"call_{step}", f"{call.name} was already called with these arguments; "
                      "use its result above or try something else", False)
    try:
        observation = execute(tools, call.name, call.arguments)
    except ToolArgumentError as exc:
        return _error(episode, f"call_{step}", str(exc), False)
    episode.messages.append({"role": "tool", "tool_call_id": f"call_{step}", "name": call.name,
                             "content": observation.text})
    return False


def _non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(_non_finite(v) for v in value)
    return False


def _repeats(episode: Episode, call) -> bool:
    same = [c for m in episode.messages[:-1] for c in m.get("tool_calls") or []
            if c["function"]["name"] == call.name and c["function"]["arguments"] == call.arguments]
    return bool(same)


def _error(episode: Episode, call_id: str, message: str, ended: bool) -> bool:
    episode.invalid_calls += 1
    episode.messages.append({"role": "tool", "tool_call_id": call_id, "content": f"Error: {message}"})
    return ended


@dataclass
class FilterResult:
    kept: list[tuple[Episode, str]] = field(default_factory=list)  # (episode, kept_because)
    dropped: Counter = field(default_factory=Counter)


def filter_episodes(q: Question, episodes: list[Episode], keep_wrong_when_all_fail: bool = False) -> FilterResult:
    """Keep correct, well-formed, distinct trajectories; count every drop by reason."""
    result = FilterResult()
    signatures: set[str] = set()
    wrong: list[Episode] = []
    for ep in episodes:
        reason = _drop_reason(ep)
        if reason:
            result.dropped[reason] += 1
        elif ep.answer != q.answer:
            wrong.append(ep)
        elif ep.signature() in signatures:
            result.dropped["duplicate"] += 1
        else:
            signatures.add(ep.signature())
            result.kept.append((ep, "correct"))
    if not result.kept and wrong and keep_wrong_when_all_fail:
        result.kept.append((wrong[0], "all_wrong_fallback"))
        wrong = wrong[1:]
    result.dropped["wrong_answer"] += len(wrong)
    if not result.dropped["wrong_answer"]:
        del result.dropped["wrong_answer"]
    return result


def _drop_reason(ep: Episode) -> str | None:
    if ep.status == "backend_error":
        return "backend_error"
    if ep.answer is None:
        return "no_answer"
    if ep.invalid_calls:
        return "invalid_tool_call"
    return None

"""Checks a schema-valid record for what a schema cannot say.

Frame references resolve both ways, tool calls use declared tools with valid arguments and get one
response each, times lie inside the video, intervals are ordered, the final assistant turn answers
with one of the options, and a grounded record holds no caption text where frames belong.
Each check returns human-readable problems; an empty list means the record is sound.
"""

from __future__ import annotations

import functools
import json
import math
from collections import Counter
from collections.abc import Iterator

import jsonschema

from validation.record import (
    ANSWER_TOOL,
    CAPTION_ONLY_TOOLS,
    FRAME_TOOLS,
    ImagePart,
    TextPart,
    TrajectoryRecord,
    VideoPart,
    letter_index,
)

TIME_SLACK_S = 0.5  # container durations are rounded; allow half a second past the end


def record_problems(record: TrajectoryRecord, n_frames: int | None = None) -> list[str]:
    checks = (_frame_problems, _tool_problems, _time_problems, _answer_problems, _grounding_problems)
    problems = [p for check in checks for p in check(record)]
    if n_frames is not None and n_frames != len(record.frames):
        described = len(record.frames)
        problems.insert(0, f"frames.msg holds {n_frames} frames but the record describes {described}")
    return problems


def final_answer(record: TrajectoryRecord) -> str | None:
    """The letter given by the terminal ``Answer`` call of the last assistant turn, if any."""
    last = next((m for m in reversed(record.messages) if m.role == "assistant"), None)
    for call in (last.tool_calls or []) if last else []:
        if call.function.name == ANSWER_TOOL:
            value = call.function.arguments.get("answer")
            return value.strip().upper() if isinstance(value, str) else None
    return None


def _referenced_frames(record: TrajectoryRecord) -> Iterator[tuple[int, int, int]]:
    """(message index, frame index, part index) for every frame reference."""
    for mi, msg in enumerate(record.messages):
        for pi, part in enumerate(msg.content):
            if isinstance(part, ImagePart):
                yield mi, part.frame, pi
            elif isinstance(part, VideoPart):
                for f in part.frames:
                    yield mi, f, pi


def _frame_problems(record: TrajectoryRecord) -> Iterator[str]:
    n = len(record.frames)
    seen: Counter[int] = Counter()
    for mi, f, _ in _referenced_frames(record):
        seen[f] += 1
        if not 0 <= f < n:
            yield f"message {mi} references frame {f} but the sample has {n} frames"
    for f in range(n):
        if not seen[f]:
            yield f"frame {f} is stored but no message references it"
    for mi, msg in enumerate(record.messages):
        for part in msg.content:
            if not isinstance(part, VideoPart):
                continue
            if (nf := len(part.frames)) != (nt := len(part.timestamps)):
                yield f"message {mi}: video part has {nf} frames but {nt} timestamps"
            if any(b <= a for a, b in zip(part.timestamps, part.timestamps[1:], strict=False)):
                yield f"message {mi}: video part timestamps are not increasing"
            for f, t in zip(part.frames, part.timestamps, strict=False):
                if 0 <= f < n and not math.isclose(record.frames[f].timestamp_s, t, abs_tol=1e-3):
                    yield f"message {mi}: frame {f} is at {record.frames[f].timestamp_s}s, the part says {t}s"


def _tool_problems(record: TrajectoryRecord) -> Iterator[str]:
    specs = {t.function.name: t.function.parameters for t in record.tools}
    pending: dict[str, str] = {}
    answered: set[str] = set()
    ids: Counter[str] = Counter(c.id for c in record.tool_calls())
    for call_id, count in ids.items():
        if count > 1:
            yield f"tool call id {call_id!r} is used {count} times"
    for mi, msg in enumerate(record.messages):
        if msg.role == "assistant":
            for call in msg.tool_calls or []:
                yield from _call_problems(mi, call.function.name, call.function.arguments, specs)
                if call.function.name != ANSWER_TOOL:
                    pending[call.id] = call.function.name
        elif msg.role == "tool":
            if msg.tool_call_id not in pending:
                yield f"message {mi}: tool response to unknown or already answered call {msg.tool_call_id!r}"
            else:
                answered.add(msg.tool_call_id)
                pending.pop(msg.tool_call_id)
    for call_id, name in pending.items():
        yield f"tool call {call_id!r} ({name}) has no tool response"


def _call_problems(mi: int, name: str, arguments: dict, specs: dict[str, dict]) -> Iterator[str]:
    if name not in specs:
        yield f"message {mi}: call to unknown tool {name!r} (declared: {', '.join(sorted(specs)) or 'none'})"
        return
    try:  # the spec comes from the record itself: it may be any JSON, not a usable schema
        errors = _validator(json.dumps(specs[name], sort_keys=True)).iter_errors(arguments)
        error = jsonschema.exceptions.best_match(errors)
    except Exception as exc:  # noqa: BLE001 - SchemaError, unresolvable $ref, bad regex, wrong types
        yield f"message {mi}: the {name} spec's parameters are not a valid JSON Schema ({type(exc).__name__})"
        return
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "arguments"
        yield f"message {mi}: {name} {where}: {error.message}"


@functools.lru_cache(maxsize=256)
def _validator(spec_json: str) -> jsonschema.Draft202012Validator:
    """One checked validator per distinct spec (every record of a dataset carries the same tools)."""
    spec = json.loads(spec_json)
    jsonschema.Draft202012Validator.check_schema(spec)
    return jsonschema.Draft202012Validator(spec)


def _time_problems(record: TrajectoryRecord) -> Iterator[str]:
    limit = record.video.duration_s + TIME_SLACK_S
    for i, frame in enumerate(record.frames):
        if not 0 <= frame.timestamp_s <= limit:
            yield f"frame {i} at {frame.timestamp_s}s is outside the video (0..{record.video.duration_s}s)"
    for call in record.tool_calls():
        args = call.function.arguments
        interval = args.get("interval")
        if isinstance(interval, list) and len(interval) == 2 and all(_is_number(v) for v in interval):
            start, end = interval
            if start >= end:
                yield f"{call.function.name} call {call.id!r}: interval [{start}, {end}] is not ordered"
            if start < 0 or end > limit:
                yield f"{call.function.name} call {call.id!r}: interval [{start}, {end}] is outside the video"
        time = args.get("time")
        if _is_number(time) and not 0 <= time <= limit:
            yield f"{call.function.name} call {call.id!r}: time {time}s is outside the video"


def _answer_problems(record: TrajectoryRecord) -> Iterator[str]:
    n = len(record.options)
    if not 0 <= letter_index(record.answer) < n or len(record.answer.strip()) != 1:
        yield f"gold answer {record.answer!r} is not a letter among the {n} options"
    if record.messages[-1].role != "assistant":
        yield "the last message is not an assistant turn"
    given = final_answer(record)
    if given is None:
        yield f"the final assistant turn does not call {ANSWER_TOOL}"
    elif not (len(given) == 1 and 0 <= letter_index(given) < n):
        yield f"the final answer {given!r} is not among the options A..{chr(ord('A') + n - 1)}"
    elif record.provenance.kept_because == "correct" and given != record.answer.strip().upper():
        yield f"kept as correct but answers {given!r} while the gold answer is {record.answer!r}"


def _grounding_problems(record: TrajectoryRecord) -> Iterator[str]:
    if record.provenance.space != "video":
        return
    calls = {c.id: c.function.name for c in record.tool_calls()}
    for call_id, name in calls.items():
        if name in CAPTION_ONLY_TOOLS:
            yield f"grounded record still calls the caption-space tool {name} ({call_id!r})"
    frames_by_call: Counter[str | None] = Counter(f.tool_call_id for f in record.frames)
    for mi, msg in enumerate(record.messages):
        if msg.role != "tool" or calls.get(msg.tool_call_id or "") not in FRAME_TOOLS:
            continue
        name = calls[msg.tool_call_id]
        if any(isinstance(p, TextPart) and p.text.strip() for p in msg.content):
            yield f"message {mi}: grounded {name} turn still holds text (teacher caption left in place)"
        if not frames_by_call[msg.tool_call_id]:
            yield f"message {mi}: grounded {name} turn has no frames"
    for mi, f, _ in _referenced_frames(record):
        msg = record.messages[mi]
        stored = 0 <= f < len(record.frames)
        if stored and msg.role == "tool" and record.frames[f].tool_call_id != msg.tool_call_id:
            yield f"message {mi}: frame {f} is attributed to call {record.frames[f].tool_call_id!r}"


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)

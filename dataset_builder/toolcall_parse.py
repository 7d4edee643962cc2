"""Parse tool calls from what real servers return: OpenAI ``tool_calls`` and Hermes ``<tool_call>`` text."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_HERMES = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)


@dataclass
class ParsedCall:
    name: str
    arguments: dict[str, Any]


@dataclass
class ParsedTurn:
    reasoning: str
    text: str
    calls: list[ParsedCall]
    errors: list[str]


def parse_turn(content: str | None, openai_tool_calls: list[dict[str, Any]] | None = None,
               reasoning: str | None = None) -> ParsedTurn:
    """Split a model reply into reasoning, plain text, tool calls and parse errors (never raises)."""
    text = content or ""
    think = _THINK.search(text)
    if think:
        reasoning = (reasoning or "") + think.group(1).strip()
        text = _THINK.sub("", text)
    calls: list[ParsedCall] = []
    errors: list[str] = []
    for raw in openai_tool_calls or []:
        function = raw.get("function", raw) if isinstance(raw, dict) else {}
        _add(function.get("name"), function.get("arguments"), calls, errors)
    for body in _HERMES.findall(text):
        try:
            obj = json.loads(body)
        except json.JSONDecodeError as exc:
            errors.append(f"tool call is not valid JSON ({exc.msg}): {body[:200]}")
            continue
        if not isinstance(obj, dict):
            errors.append(f"tool call must be a JSON object: {body[:200]}")
            continue
        _add(obj.get("name"), obj.get("arguments", obj.get("parameters")), calls, errors)
    text = _HERMES.sub("", text).strip()
    return ParsedTurn(reasoning=(reasoning or "").strip(), text=text, calls=calls, errors=errors)


def _add(name: Any, arguments: Any, calls: list[ParsedCall], errors: list[str]) -> None:
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as exc:
            errors.append(f"arguments of {name!r} are not valid JSON ({exc.msg})")
            return
    if not isinstance(name, str) or not name:
        errors.append("tool call without a function name")
    elif not isinstance(arguments, dict):
        errors.append(f"arguments of {name!r} must be a JSON object")
    else:
        calls.append(ParsedCall(name, arguments))

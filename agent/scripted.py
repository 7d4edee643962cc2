"""``ScriptedModel``: a TEST DOUBLE for the agent's model protocol. It never looks at the video.

It returns a fixed list of replies in order (tool calls, answers, each with an optional stated confidence)
and records every chat it was given, so tests can check what the executor really put into the
conversation (frames at the requested times, crops, text observations) and how answers are scored and
routed. It is never a default: it is used only when named (``ScriptedModel(...)`` or
``--model scripted:FILE.json``), and its name says what it is.

A script file is a JSON list whose entries are either a reply string or ``{"text": ..., "confidence": ...}``;
or an object ``{"replies": [...], "summary": "..."}`` (``summary`` answers SubtitleSummary).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.models import Chat, Generation, ModelError
from dataset_builder.backends import ChatReply


@dataclass(frozen=True)
class ScriptedReply:
    text: str
    confidence: float | None = None  # the answer confidence this reply claims (adaptive routing)


class ScriptExhausted(ModelError):
    """The script has no reply left: the test asked for more turns than it scripted."""


class ScriptedModel:
    """Replies from a fixed list, in order; records the chats it saw (``self.chats``)."""

    def __init__(self, replies: list[ScriptedReply | str], summary: str = "scripted summary", name: str = "scripted"):
        self.replies = [r if isinstance(r, ScriptedReply) else ScriptedReply(r) for r in replies]
        self.name = f"scripted:{name}"
        self.chats: list[Chat] = []
        self.summarizer = _FixedSummary(summary)

    @classmethod
    def from_file(cls, path: Path) -> ScriptedModel:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelError(f"{path}: cannot read the script ({exc})") from None
        entries = data.get("replies", []) if isinstance(data, dict) else data
        if not isinstance(entries, list) or not entries:
            raise ModelError(f"{path}: a script is a non-empty JSON list of replies (strings or {{text, confidence}})")
        replies = [ScriptedReply(e) if isinstance(e, str) else ScriptedReply(str(e["text"]), e.get("confidence"))
                   for e in entries]
        summary = data.get("summary", "scripted summary") if isinstance(data, dict) else "scripted summary"
        return cls(replies, summary=summary, name=Path(path).stem)

    @property
    def remaining(self) -> int:
        return len(self.replies) - len(self.chats)

    def generate(self, chat: Chat, *, max_tokens: int, logprobs: bool = False) -> Generation:
        if self.remaining <= 0:
            raise ScriptExhausted(f"{self.name}: all {len(self.replies)} scripted replies were used")
        reply = self.replies[len(self.chats)]
        self.chats.append(_snapshot(chat))
        return Generation(text=reply.text, confidence=reply.confidence)


def _snapshot(chat: Chat) -> Chat:
    """A shallow copy that later turns do not change (the loop appends to its lists)."""
    return {**chat, "messages": list(chat["messages"]), "images": list(chat.get("images") or []),
            "videos": list(chat.get("videos") or [])}


class _FixedSummary:
    name = "scripted-summary"

    def __init__(self, text: str):
        self.text = text

    def chat(self, messages: list[dict[str, Any]], **kwargs: Any) -> ChatReply:
        return ChatReply(content=self.text)

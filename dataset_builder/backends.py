"""Model backends: one protocol for "chat with optional images and tools", several implementations.

- ``TransformersBackend``: in-process with transformers (the embedded default of the ``local`` preset).
- ``OpenAIBackend``: any OpenAI-compatible server (vLLM, SGLang, a hosted API); the ``paper`` preset.
- ``CachedBackend``: wraps any backend with the content-addressed cache (resumable builds).
The captioner, the teacher, the summarizer and the agent all go through this protocol.
"""

from __future__ import annotations

import io
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from dataset_builder.cache import Cache, content_key

log = logging.getLogger(__name__)


@dataclass
class ChatReply:
    content: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    reasoning: str | None = None


class BackendError(RuntimeError):
    """A model call that failed after retries; the build counts it and goes on."""


class ChatBackend(Protocol):
    name: str

    def chat(self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None,
             images: list[bytes] | None = None, temperature: float = 0.0, seed: int = 0,
             max_tokens: int = 512) -> ChatReply: ...


class CachedBackend:
    """Serve repeated calls from the cache; the key covers model, messages, images, parameters, seed."""

    def __init__(self, inner: ChatBackend, cache: Cache):
        self.inner = inner
        self.cache = cache
        self.name = inner.name

    def chat(self, messages, *, tools=None, images=None, temperature=0.0, seed=0, max_tokens=512) -> ChatReply:
        key = content_key("chat", self.name, messages, tools, images or [], temperature, seed, max_tokens)
        value = self.cache.get_or_compute(key, lambda: self.inner.chat(
            messages, tools=tools, images=images, temperature=temperature, seed=seed,
            max_tokens=max_tokens).__dict__)
        return ChatReply(**value)


class OpenAIBackend:
    """An OpenAI-compatible chat endpoint; the client retries 429/5xx/timeouts honouring Retry-After."""

    def __init__(self, model: str, base_url: str | None = None, api_key_env: str = "OPENAI_API_KEY",
                 timeout_s: float = 120.0, max_retries: int = 5):
        try:
            import openai
        except ImportError as exc:
            raise BackendError("the openai client is not installed: pip install 'videothinker-traj[openai]'") from exc
        self.name = f"openai:{model}"
        self.model = model
        self.client = openai.OpenAI(base_url=base_url, api_key=os.environ.get(api_key_env) or "EMPTY",
                                    timeout=timeout_s, max_retries=max_retries)

    def chat(self, messages, *, tools=None, images=None, temperature=0.0, seed=0, max_tokens=512) -> ChatReply:
        import openai

        payload = _with_image_urls(_wire_messages(messages), images or [])
        try:
            response = self.client.chat.completions.create(
                model=self.model, messages=payload, tools=tools or openai.NOT_GIVEN, temperature=temperature,
                seed=seed, max_tokens=max_tokens)
        except openai.OpenAIError as exc:
            raise BackendError(f"{self.name}: {type(exc).__name__}: {str(exc)[:200]}") from exc
        except ValueError as exc:  # a 200 whose body is not JSON (truncated by a proxy, cut connection)
            raise BackendError(f"{self.name}: unreadable response body ({type(exc).__name__}: {exc})") from exc
        try:  # the client does not validate responses: a server may send anything in a 200
            message = response.choices[0].message
            calls = [{"function": {"name": getattr(c.function, "name", None),
                                   "arguments": getattr(c.function, "arguments", None)}}
                     for c in message.tool_calls or []]
            reasoning = getattr(message, "reasoning_content", None)
            return ChatReply(content=_text_content(message.content), tool_calls=calls,
                             reasoning=reasoning if isinstance(reasoning, str) else None)
        except (AttributeError, IndexError, KeyError, TypeError) as exc:
            raise BackendError(f"{self.name}: malformed chat completion ({type(exc).__name__}: {exc})") from exc


def _wire_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Episode messages in the strict OpenAI wire format: ``function.arguments`` a JSON string, no empty
    ``tool_calls`` list, and the teacher's parsed reasoning under ``reasoning_content`` (what vLLM/SGLang use)."""
    out = []
    for m in messages:
        m = {k: v for k, v in m.items() if v is not None}
        reasoning = m.pop("reasoning", None)
        if reasoning and m.get("role") == "assistant":
            m["reasoning_content"] = reasoning
        calls = m.pop("tool_calls", None)
        if calls:
            m["tool_calls"] = [{**c, "function": {**c["function"], "arguments": c["function"]["arguments"]
                                                  if isinstance(c["function"].get("arguments"), str)
                                                  else json.dumps(c["function"].get("arguments") or {})}}
                               for c in calls]
        out.append(m)
    return out


def _text_content(content: Any) -> str:
    """``message.content`` as text: a string, or the text parts of a list of content parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    return str(content)


def _with_image_urls(messages: list[dict[str, Any]], images: list[bytes]) -> list[dict[str, Any]]:
    """Attach images to the last user message as data URLs (the OpenAI vision format)."""
    if not images:
        return messages
    import base64

    out = [dict(m) for m in messages]
    last = max(i for i, m in enumerate(out) if m["role"] == "user")
    text = out[last]["content"] if isinstance(out[last]["content"], str) else ""
    parts = [{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64," + base64.b64encode(b).decode()}}
             for b in images]
    out[last]["content"] = [*parts, {"type": "text", "text": text}]
    return out


class TransformersBackend:
    """A chat model run in-process with transformers: a VLM (image-text-to-text) or a text-only LLM."""

    def __init__(self, model: str, device: str | None = None, dtype: str = "auto"):
        from dataset_builder.tiny_models import resolve_model

        self.name = f"transformers:{model}"
        self.path = resolve_model(model)
        self.device = device
        self.dtype = dtype
        self._model = None
        self._processor = None
        self._lock = threading.Lock()  # one generate at a time per in-process model

    def _load(self) -> None:
        if self._model is not None:
            return
        import torch
        from transformers import (
            AutoConfig,
            AutoModelForCausalLM,
            AutoModelForImageTextToText,
            AutoProcessor,
            AutoTokenizer,
        )

        config = AutoConfig.from_pretrained(self.path)
        if hasattr(config, "vision_config"):
            self._processor = AutoProcessor.from_pretrained(self.path)
            self._model = AutoModelForImageTextToText.from_pretrained(self.path, dtype=self.dtype)
        else:
            self._processor = AutoTokenizer.from_pretrained(self.path)
            self._model = AutoModelForCausalLM.from_pretrained(self.path, dtype=self.dtype)
        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._model.eval().to(device)

    def chat(self, messages, *, tools=None, images=None, temperature=0.0, seed=0, max_tokens=512) -> ChatReply:
        with self._lock:
            self._load()
            return self._generate(messages, tools, images or [], temperature, seed, max_tokens)

    def _generate(self, messages, tools, images, temperature, seed, max_tokens) -> ChatReply:
        import torch
        from PIL import Image

        pil = [Image.open(io.BytesIO(b)).convert("RGB") for b in images]
        vlm = hasattr(self._model.config, "vision_config")
        if pil and not vlm:
            raise BackendError(f"{self.name} is a text-only model and cannot take images")
        chat = _with_image_parts(messages, len(pil)) if vlm else messages
        text = self._processor.apply_chat_template(chat, tools=tools, add_generation_prompt=True, tokenize=False)
        kwargs = {"text": [text], "images": pil or None} if vlm else {"text": [text]}
        inputs = self._processor(**kwargs, return_tensors="pt").to(self._model.device)
        torch.manual_seed(seed)
        sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
        with torch.inference_mode():
            out = self._model.generate(**inputs, max_new_tokens=max_tokens, **sampling)
        new_tokens = out[:, inputs["input_ids"].shape[1]:]
        reply = self._processor.batch_decode(new_tokens, skip_special_tokens=False)[0]
        return ChatReply(content=_strip_special(reply, self._processor))


def _strip_special(text: str, processor: Any) -> str:
    """Drop special tokens but keep tool-call and think markers, which are text to the parser."""
    tokenizer = getattr(processor, "tokenizer", processor)
    keep = {"<tool_call>", "</tool_call>", "<think>", "</think>"}
    for token in getattr(tokenizer, "all_special_tokens", []):
        if token not in keep:
            text = text.replace(token, "")
    return text.strip()


def _with_image_parts(messages: list[dict[str, Any]], n_images: int) -> list[dict[str, Any]]:
    out = []
    for m in messages:
        content = m["content"]
        parts = content if isinstance(content, list) else [{"type": "text", "text": content}]
        out.append({**m, "content": parts})
    if n_images:
        last = max(i for i, m in enumerate(out) if m["role"] == "user")
        out[last]["content"] = [{"type": "image"}] * n_images + out[last]["content"]
    return out

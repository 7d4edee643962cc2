"""The agent's model protocol and its implementations: transformers in-process, an OpenAI-compatible server.

A chat is the ``loaders.chat`` form the SFT renderers take: ``{"messages", "images", "videos", "tools"}``,
messages with ``text`` / ``image`` / ``video`` parts in order (the i-th image/video part is ``images[i]`` /
``videos[i]``, videos being ``VideoClip`` frames with their real timestamps), assistant turns with
``reasoning_content`` and ``tool_calls``, tool turns with ``tool_call_id``. A model turns a chat into one
``Generation``; with ``logprobs=True`` it also reports each generated token's span and log-probability, from
which the policy computes the answer confidence (``agent.answers.answer_confidence``).

- ``TransformersAgentModel`` renders with the family's training renderer (``sft.render``: the same
  template, frames as video with real timestamps, crops as images, budgets) plus the generation prompt, and
  generates greedily with ``output_scores``/``output_logits`` for the probabilities.
- ``OpenAIAgentModel`` posts to ``{base_url}/chat/completions`` (vLLM, SGLang, a hosted API) with the
  stdlib HTTP client; frames go as ``image_url`` parts, each after a ``<12.5s>`` timestamp text.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from agent.answers import TokenLogprob, token_spans
from dataset_builder.backends import ChatReply
from dataset_builder.video import encode_image

log = logging.getLogger(__name__)
Chat = dict[str, Any]


class ModelError(RuntimeError):
    """The model could not be loaded or did not answer; the message says what to fix."""


@dataclass
class Generation:
    text: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    reasoning: str | None = None
    tokens: list[TokenLogprob] | None = None  # per generated token: span in ``text`` and log-probability
    confidence: float | None = None  # stated outright by a test double; real models leave it None
    seconds: float = 0.0


class AgentModel(Protocol):
    name: str

    def generate(self, chat: Chat, *, max_tokens: int, logprobs: bool = False) -> Generation: ...


# -------------------------------------------------------------------------------------------- transformers


class TransformersAgentModel:
    """A Qwen-VL-family model (or a LoRA adapter folder of one) in this process; greedy decoding."""

    def __init__(self, model: str, *, device: str | None = None, dtype: str = "auto", max_pixels: int = 32768,
                 max_frames: int = 64, max_context: int = 32768):
        from dataset_builder.tiny_models import resolve_model

        self.name = f"transformers:{model}"
        self.path = resolve_model(model)
        self.device, self.dtype = device, dtype
        self.max_pixels, self.max_frames, self.max_context = max_pixels, max_frames, max_context
        self._model: Any = None
        self.renderer: Any = None

    def load(self) -> TransformersAgentModel:
        if self._model is not None:
            return self
        import torch
        from transformers import AutoModelForImageTextToText

        from sft.budget import Budget
        from sft.families import family_of
        from sft.processors import load_processor

        family = family_of(_base_model(self.path))
        processor = load_processor(self.path)
        model = AutoModelForImageTextToText.from_pretrained(self.path, dtype=self.dtype).eval()
        self._model = model.to(self.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        budget = Budget(max_frames=self.max_frames, max_pixels=self.max_pixels, max_tokens=self.max_context)
        self.renderer = _generation_renderer(processor, family, budget)
        return self

    @property
    def tokenizer(self) -> Any:
        return self.load().renderer.tokenizer

    def generate(self, chat: Chat, *, max_tokens: int, logprobs: bool = False) -> Generation:
        import torch

        started = time.monotonic()
        self.load()
        inputs = self.inputs(chat)
        prompt_len = inputs["input_ids"].shape[1]
        with torch.inference_mode():
            out = self._model.generate(**inputs, max_new_tokens=max_tokens, do_sample=False, output_scores=True,
                                       output_logits=True, return_dict_in_generate=True,
                                       **self.generate_kwargs(inputs))
        ids = self._until_eos(out.sequences[0, prompt_len:].tolist())
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        tokens = self._token_logprobs(ids, out.logits or out.scores) if logprobs else None
        return Generation(text=text, tokens=tokens, seconds=time.monotonic() - started)

    def inputs(self, chat: Chat) -> dict[str, Any]:
        """Processor inputs of the chat with the generation prompt (labels dropped), on the model's device."""
        prepared = self.load().renderer.prepare(chat)
        batch = self.renderer.encode([prepared])
        batch.pop("labels", None)
        return {k: v.to(self._model.device) if hasattr(v, "to") else v for k, v in batch.items()}

    def generate_kwargs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Extra ``generate`` arguments (a hook: e.g. ``prefix_allowed_tokens_fn`` in tests)."""
        return {}

    def _until_eos(self, ids: list[int]) -> list[int]:
        stop = self._model.generation_config.eos_token_id
        stop = set(stop if isinstance(stop, list) else [stop]) | {self.tokenizer.pad_token_id}
        for i, token in enumerate(ids):
            if token in stop:
                return ids[:i]
        return ids

    def _token_logprobs(self, ids: list[int], logits: tuple[Any, ...]) -> list[TokenLogprob]:
        """Log-probability of each generated token under the raw logits, with its span in the decoded text."""
        import torch

        logprobs = [float(torch.log_softmax(logits[i][0].float(), dim=-1)[token]) for i, token in enumerate(ids)]
        out, start = [], 0
        for i, logprob in enumerate(logprobs):
            end = max(start, len(self.tokenizer.decode(ids[:i + 1], skip_special_tokens=True)))
            out.append(TokenLogprob(start, end, logprob))
            start = end
        return out


def _generation_renderer(processor: Any, family: Any, budget: Any) -> Any:
    from sft.render import Renderer

    class GenerationRenderer(Renderer):
        """The training renderer, with the assistant header appended for generation."""

        def text(self, chat: dict[str, Any]) -> str:
            return self.processor.apply_chat_template(chat["messages"], tools=chat.get("tools") or None,
                                                      chat_template=self.template, tokenize=False,
                                                      add_generation_prompt=True)

    return GenerationRenderer(processor, family, budget)


def _base_model(path: str) -> str:
    """For a LoRA adapter folder, the base model it was trained on (for the family); else the path."""
    adapter = Path(path) / "adapter_config.json"
    if adapter.exists():
        return json.loads(adapter.read_text()).get("base_model_name_or_path") or path
    return path


# ---------------------------------------------------------------------------------------------- OpenAI


Post = Callable[[str, dict[str, Any], dict[str, str]], dict[str, Any]]


class OpenAIAgentModel:
    """A model behind an OpenAI-compatible ``/chat/completions`` endpoint; temperature 0."""

    def __init__(self, model: str, base_url: str, *, api_key_env: str = "OPENAI_API_KEY", timeout_s: float = 600.0,
                 retries: int = 3, post: Post | None = None):
        self.name = f"openai:{model}"
        self.model = model
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.api_key = os.environ.get(api_key_env) or "EMPTY"
        self.timeout_s, self.retries = timeout_s, retries
        self._post = post or self._http_post

    def generate(self, chat: Chat, *, max_tokens: int, logprobs: bool = False) -> Generation:
        started = time.monotonic()
        payload: dict[str, Any] = {"model": self.model, "messages": openai_messages(chat), "max_tokens": max_tokens,
                                   "temperature": 0.0}
        if chat.get("tools"):
            payload["tools"] = chat["tools"]
        if logprobs:
            payload["logprobs"] = True
        data = self._post(self.url, payload, {"Authorization": f"Bearer {self.api_key}"})
        try:
            choice = data["choices"][0]
            message = choice["message"]
        except (KeyError, IndexError, TypeError) as exc:
            raise ModelError(f"{self.name}: unexpected response {str(data)[:200]}") from exc
        text = message.get("content") or ""
        calls = [{"function": {"name": c["function"]["name"], "arguments": c["function"].get("arguments") or "{}"}}
                 for c in message.get("tool_calls") or []]
        tokens = _openai_tokens(choice, text) if logprobs else None
        return Generation(text=text, tool_calls=calls, reasoning=message.get("reasoning_content"), tokens=tokens,
                          seconds=time.monotonic() - started)

    def _http_post(self, url: str, payload: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        """One request through the ``openai`` client (the builder's client too): retries with backoff on
        429/5xx/timeouts honouring Retry-After, a request timeout."""
        try:
            import openai
        except ImportError as exc:
            raise ModelError("the openai client is not installed: pip install 'videothinker-traj[openai]'") from exc
        client = openai.OpenAI(base_url=url.removesuffix("/chat/completions"), api_key=self.api_key,
                               timeout=self.timeout_s, max_retries=self.retries)
        try:
            return client.chat.completions.create(**payload).model_dump()
        except openai.APIConnectionError as exc:
            raise ModelError(f"{self.name}: cannot reach {url} ({exc}); is the server running?") from exc
        except openai.APIStatusError as exc:
            raise ModelError(f"{self.name}: HTTP {exc.status_code} from {url}: {str(exc)[:300]}") from exc
        except openai.OpenAIError as exc:
            raise ModelError(f"{self.name}: {type(exc).__name__}: {str(exc)[:300]}") from exc


def _openai_tokens(choice: dict[str, Any], text: str) -> list[TokenLogprob] | None:
    content = ((choice.get("logprobs") or {}).get("content")) or []
    pieces = [str(t.get("token", "")) for t in content]
    if not content or "".join(pieces) != text:
        return None  # no logprobs, or tokens that do not spell the reply: no span can be trusted
    return token_spans(pieces, [float(t.get("logprob", 0.0)) for t in content])


def openai_messages(chat: Chat) -> list[dict[str, Any]]:
    """A chat in the OpenAI vision format: frames as data-URL images, tool turns as text (their frames
    follow in a user message, since tool messages carry text only)."""
    images, videos = iter(chat.get("images") or []), iter(chat.get("videos") or [])
    out: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []  # visual parts of tool turns, sent after the run of tool messages
    for message in chat["messages"]:
        role = message["role"]
        parts = _openai_parts(message["content"], images, videos)
        if role != "tool" and pending:
            out.append({"role": "user", "content": pending})
            pending = []
        if role == "tool":
            text = " ".join(p["text"] for p in parts if p["type"] == "text")
            if _has_visual(message["content"]):
                pending += [{"type": "text", "text": f"Frames returned by {message.get('name', 'the tool')}:"}, *parts]
                text = "The frames follow in the next message."
            out.append({"role": "tool", "tool_call_id": message.get("tool_call_id", ""), "content": text})
        elif role == "assistant":
            out.append(_openai_assistant(message, parts))
        else:
            out.append({"role": role, "content": parts})
    if pending:
        out.append({"role": "user", "content": pending})
    return out


def _has_visual(content: Any) -> bool:
    return isinstance(content, list) and any(p.get("type") in ("image", "video") for p in content)


def _openai_parts(content: Any, images: Any, videos: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    parts: list[dict[str, Any]] = []
    for part in content:
        if part["type"] == "text":
            parts.append({"type": "text", "text": part["text"]})
        elif part["type"] == "image":
            parts.append(_image_url(next(images)))
        elif part["type"] == "video":
            clip = next(videos)
            for frame, t in zip(clip.frames, clip.timestamps):
                parts += [{"type": "text", "text": f"<{t:.1f}s>"}, _image_url(frame)]
    return parts


def _image_url(image: Any) -> dict[str, Any]:
    data = base64.b64encode(encode_image(image, "jpeg", 90)).decode()
    return {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{data}"}}


def _openai_assistant(message: dict[str, Any], parts: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"role": "assistant", "content": " ".join(p["text"] for p in parts if p["type"] == "text")}
    calls = message.get("tool_calls") or []
    if calls:
        out["tool_calls"] = [{"id": c.get("id", f"call_{i}"), "type": "function",
                              "function": {"name": c["function"]["name"],
                                           "arguments": json.dumps(c["function"]["arguments"])}}
                             for i, c in enumerate(calls)]
    return out


# ------------------------------------------------------------------------------------- loading, summarizer


def load_model(spec: str, *, base_url: str | None = None, api_key_env: str = "OPENAI_API_KEY",
               device: str | None = None, dtype: str = "auto", max_pixels: int = 32768,
               max_frames: int = 64) -> AgentModel:
    """``scripted:FILE.json`` (the test double), a model behind ``base_url``, or a transformers model
    (a local folder, a Hub id in the local cache, ``tiny:FAMILY``)."""
    if spec.startswith("scripted:"):
        from agent.scripted import ScriptedModel

        return ScriptedModel.from_file(Path(spec[len("scripted:"):]))
    if base_url:
        return OpenAIAgentModel(spec, base_url, api_key_env=api_key_env)
    if spec.startswith(("/", "./", "../", "~")) and not Path(spec).expanduser().is_dir():
        raise ModelError(f"model folder {spec} does not exist")
    try:
        return TransformersAgentModel(spec, device=device, dtype=dtype, max_pixels=max_pixels,
                                      max_frames=max_frames).load()
    except (OSError, ValueError) as exc:
        message = " ".join(str(exc).split())[:300]
        raise ModelError(f"cannot load model {spec!r}: {message} (give a model folder, a Hub id in the local cache "
                         "or reachable online, tiny:qwen2_5_vl, or a served model with --base-url)") from exc


class ModelSummarizer:
    """The agent model as a text ``ChatBackend`` (for SubtitleSummary): text-only chats, reasoning dropped."""

    def __init__(self, model: AgentModel):
        self.model = model
        self.name = f"summarizer:{model.name}"

    def chat(self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None,
             images: list[bytes] | None = None, temperature: float = 0.0, seed: int = 0,
             max_tokens: int = 512) -> ChatReply:
        chat = {"messages": [{"role": m["role"], "content": [{"type": "text", "text": str(m["content"])}]}
                             for m in messages], "images": [], "videos": [], "tools": None}
        text = self.model.generate(chat, max_tokens=max_tokens).text
        return ChatReply(content=text.split("</think>")[-1].strip())

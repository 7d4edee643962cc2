"""Helpers for the reliability suites: caption-space tools without models, scripted teacher policies for
the fake OpenAI server, build inputs, hostile shards and bad videos.

Everything here is an honest test double or a crafted input: the code under test is always the real one.
"""

from __future__ import annotations

import io
import json
import random
import tarfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dataset_builder.backends import ChatReply
from dataset_builder.executors import CaptionSpaceTools, Services
from dataset_builder.questions import Question
from dataset_builder.video_index import VideoIndex, segment
from tests.fake_openai_server import Action, hermes_call, openai_call, rate_limited, reply, status

# --------------------------------------------------------------------------- caption-space tools, no models


class StubCaptioner:
    """Returns a fixed caption (the captioner is not what these tests exercise)."""

    name = "stub-captioner"

    def __init__(self, text: str = "black and white vertical blocks on screen"):
        self.text = text
        self.calls = 0

    def chat(self, messages, *, tools=None, images=None, temperature=0.0, seed=0, max_tokens=512) -> ChatReply:
        self.calls += 1
        return ChatReply(content=self.text)


class StubEmbedder:
    """Ranks the corpus by word overlap with the query (deterministic, no model download)."""

    def top_k(self, query: str, corpus: list[str], k: int) -> list[tuple[int, float]]:
        q = set(query.lower().split())
        scores = [len(q & set(text.lower().split())) / (1 + len(q)) for text in corpus]
        order = sorted(range(len(corpus)), key=lambda i: (-scores[i], i))[:k]
        return [(i, float(scores[i])) for i in order]


def make_tools(video_path: Path, duration_s: float, clip_seconds: float = 2.0) -> CaptionSpaceTools:
    clips = segment(duration_s, clip_seconds)
    index = VideoIndex(video_id="v", path=str(video_path), fingerprint="f", duration_s=duration_s, fps=25.0,
                       width=192, height=128, start_time_s=0.0, clips=clips,
                       clip_captions=[f"clip {i} shows blocks" for i in range(len(clips))],
                       global_caption="A video of black and white blocks.")
    services = Services(captioner=StubCaptioner(), summarizer=StubCaptioner("summary"), embedder=StubEmbedder(),
                        caption_frames=2, zoom_frames=2, max_pixels=64 * 64, max_tokens=16)
    return CaptionSpaceTools(index, services)


QUESTION = Question(id="q1", video="cfr.mp4", question="What is shown on screen?",
                    options=["black and white blocks", "people", "a river", "a city"], answer="A")


# ------------------------------------------------------------------------------- scripted teacher policies


def step_of(body: dict[str, Any]) -> int:
    """How many assistant turns the conversation already holds (= the teacher's step)."""
    return sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")


def forced(body: dict[str, Any]) -> bool:
    return [t["function"]["name"] for t in body.get("tools") or []] == ["Answer"]


def question_text(body: dict[str, Any]) -> str:
    messages = body.get("messages") or [{}, {}]
    content = messages[1].get("content", "") if len(messages) > 1 else ""
    return content.splitlines()[0] if isinstance(content, str) and content else ""


def good_teacher(answer: str, fmt: str = "openai") -> Callable[[dict[str, Any]], Action]:
    """Retrieve, zoom into the first clip, answer ``answer``: in OpenAI ``tool_calls`` or Hermes text."""

    def policy(body: dict[str, Any]) -> Action:
        step = step_of(body)
        if forced(body) or step >= 2:
            name, args = "Answer", {"answer": answer}
        elif step == 0:
            name, args = "ClipRetrieval", {"query": question_text(body)[:100] or "what is shown", "top_k": 2}
        else:
            name, args = "CaptionZoom", {"interval": [0.0, 2.0]}
        if fmt == "openai":
            return reply("", [openai_call(name, args, f"call_{step}")], reasoning="Thinking about it.")
        return reply(hermes_call(name, args))

    return policy


def never_calls_a_tool(body: dict[str, Any]) -> Action:
    return reply("I believe the answer is A, the blocks.")


def repeats_forever(body: dict[str, Any]) -> Action:
    return reply(hermes_call("ClipRetrieval", {"query": "blocks", "top_k": 3}))


def malformed_then_answers(answer: str) -> Callable[[dict[str, Any]], Action]:
    """Step 0: broken JSON in a Hermes block; step 1: unknown tool; step 2: bad arguments; then answers."""

    def policy(body: dict[str, Any]) -> Action:
        step = step_of(body)
        if forced(body) or step >= 3:
            return reply(hermes_call("Answer", {"answer": answer}))
        if step == 0:
            return reply('<tool_call>{"name": "ClipRetrieval", "arguments": {"query": </tool_call>')
        if step == 1:
            return reply("", [openai_call("Teleport", {"to": "the answer"})])
        return reply("", [openai_call("CaptionZoom", {"interval": [5.0, 1.0]})])

    return policy


class FirstTimeRateLimited:
    """Wraps a policy: every distinct request is first answered 429 (Retry-After), then by the policy."""

    def __init__(self, inner: Callable[[dict[str, Any]], Action]):
        self.inner = inner
        self.seen: set[str] = set()
        self.limited = 0
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Action:
        key = json.dumps(body, sort_keys=True)
        with self._lock:
            first = key not in self.seen
            self.seen.add(key)
            self.limited += first
        return rate_limited(0.02) if first else self.inner(body)


def route_by_question(routes: dict[str, Callable[[dict[str, Any]], Action]]) -> Callable[[dict[str, Any]], Action]:
    """Dispatch on the question (first line of the first user message); unknown questions get a 400."""

    def policy(body: dict[str, Any]) -> Action:
        handler = routes.get(question_text(body))
        return handler(body) if handler else status(400, body={"error": {"message": "unknown question"}})

    return policy


# ------------------------------------------------------------------------------------------- hostile tars


def tar_bytes(members: list[tuple[str, bytes]] | list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for item in members:
            if isinstance(item, tarfile.TarInfo):
                tar.addfile(item)
                continue
            name, data = item
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def huge_declared_member(name: str, declared: int = 2 * 1024**3, actual: bytes = b"x" * 1024) -> bytes:
    """A tar whose only member's header declares ``declared`` bytes but whose file holds ``actual`` bytes."""
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(actual), 0, 0o644
    header = bytearray(info.tobuf(format=tarfile.USTAR_FORMAT))
    header[124:136] = f"{declared:011o}\0".encode()  # the size field (octal)
    header[148:156] = b"        "
    checksum = sum(header)
    header[148:156] = f"{checksum:06o}\0 ".encode()
    pad = (-len(actual)) % 512
    return bytes(header) + actual + b"\0" * pad + b"\0" * 1024


def noise_jpeg(width: int = 32, height: int = 24, seed: int = 0) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
    buf = io.BytesIO()
    image.save(buf, format="JPEG")
    return buf.getvalue()


def random_bytes(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


# ------------------------------------------------------------------------------------------- bad videos


def corrupt_mid_video(dest: Path) -> Path:
    """The 25 fps CFR fixture with 20 % of its bytes, in the middle of the stream, overwritten by noise."""
    from tests.fixtures.videos import cfr_video

    data = bytearray(cfr_video().path.read_bytes())
    rng = random.Random(0)
    for i in range(len(data) * 4 // 10, len(data) * 6 // 10):
        data[i] = rng.randrange(256)
    dest.write_bytes(bytes(data))
    return dest


def zero_duration_video(dest: Path) -> Path:
    """An MP4 with a video track header and no frame at all (duration 0)."""
    import av

    with av.open(str(dest), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        out.start_encoding()
    return dest


def uhd_video(dest: Path, n: int = 6) -> Path:
    """3840x2160 H.264 at 25 fps, ``n`` frames of the index pattern scaled up 20x."""
    import av

    from tests.fixtures.videos import index_pattern

    with av.open(str(dest), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 3840, 2160, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for i in range(n):
            image = np.kron(index_pattern(i, 192, 108), np.ones((20, 20, 1), np.uint8))
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return dest

"""The OpenAI-compatible model client (against a stub transport) and the scripted double's file format."""

from __future__ import annotations

import json
import math

import pytest
from PIL import Image

from agent.loop import Trajectory, answer_directly, direct_conversation
from agent.models import ModelError, ModelSummarizer, OpenAIAgentModel, load_model, openai_messages
from agent.scripted import ScriptedModel
from loaders.chat import VideoClip

OPTIONS = ["a", "b", "c", "d"]


def frames(n: int) -> VideoClip:
    return VideoClip([Image.new("RGB", (8, 8), (i * 40, 0, 0)) for i in range(n)], [0.5 + i for i in range(n)])


def test_openai_messages_send_frames_with_timestamps_and_tool_frames_as_user_turns():
    chat = {"messages": [
        {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Q?"}]},
        {"role": "assistant", "content": [], "reasoning_content": "hmm",
         "tool_calls": [{"id": "call_0_0", "type": "function",
                         "function": {"name": "FrameZoom", "arguments": {"interval": [0, 2]}}}]},
        {"role": "tool", "tool_call_id": "call_0_0", "name": "FrameZoom", "content": [{"type": "video"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
    ], "images": [], "videos": [frames(2), frames(1)], "tools": None}
    out = openai_messages(chat)
    assert [m["role"] for m in out] == ["user", "assistant", "tool", "user", "assistant"]
    first = out[0]["content"]
    assert [p["type"] for p in first] == ["text", "image_url", "text", "image_url", "text"]
    assert first[0]["text"] == "<0.5s>" and first[1]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert out[1]["tool_calls"][0]["function"]["arguments"] == '{"interval": [0, 2]}'
    assert out[2] == {"role": "tool", "tool_call_id": "call_0_0", "content": "The frames follow in the next message."}
    assert out[3]["content"][0]["text"] == "Frames returned by FrameZoom:" and len(out[3]["content"]) == 3


def test_openai_model_reads_content_tool_calls_and_answer_confidence():
    seen = {}

    def post(url, payload, headers):
        seen.update(url=url, payload=payload)
        tokens = [{"token": "The", "logprob": -0.2}, {"token": " answer is", "logprob": -0.1},
                  {"token": " C", "logprob": math.log(0.6)}]
        return {"choices": [{"message": {"content": "The answer is C", "tool_calls": None},
                             "logprobs": {"content": tokens}}]}

    model = OpenAIAgentModel("served", "http://127.0.0.1:9/v1/", post=post)
    conv = direct_conversation([(None, frames(2))], "What?", OPTIONS)
    traj = Trajectory()
    confidence = answer_directly(model, conv, OPTIONS, 16, traj)
    assert seen["url"] == "http://127.0.0.1:9/v1/chat/completions"
    assert seen["payload"]["logprobs"] is True and seen["payload"]["max_tokens"] == 16
    assert "tools" not in seen["payload"]
    assert traj.answer == "C" and confidence == pytest.approx(0.6)


def test_openai_structured_tool_calls_are_parsed():
    def post(url, payload, headers):
        call = {"function": {"name": "Answer", "arguments": '{"answer": "B"}'}}
        return {"choices": [{"message": {"content": None, "tool_calls": [call]}}]}

    gen = OpenAIAgentModel("served", "http://127.0.0.1:9/v1", post=post).generate(
        {"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function"}]}, max_tokens=8)
    assert gen.text == "" and gen.tool_calls == [{"function": {"name": "Answer", "arguments": '{"answer": "B"}'}}]


def test_unreachable_server_is_a_model_error():
    model = OpenAIAgentModel("served", "http://127.0.0.1:9/v1", retries=0, timeout_s=2)
    with pytest.raises(ModelError, match="cannot reach"):
        model.generate({"messages": [{"role": "user", "content": "hi"}]}, max_tokens=4)


def test_scripted_model_file_and_summarizer(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"replies": ["A", {"text": "B", "confidence": 0.4}], "summary": "short"}))
    model = load_model(f"scripted:{path}")
    assert isinstance(model, ScriptedModel) and model.name == "scripted:s"
    assert [r.confidence for r in model.replies] == [None, 0.4]
    assert model.summarizer.chat([{"role": "user", "content": "x"}]).content == "short"
    wrapped = ModelSummarizer(model)
    assert wrapped.chat([{"role": "user", "content": "sum up"}]).content == "A"
    assert model.chats[0]["messages"][0]["content"] == [{"type": "text", "text": "sum up"}]


def test_openai_agent_model_over_real_http_retries_a_429_and_reads_tool_calls():
    from tests.fake_openai_server import FakeOpenAIServer, openai_call, rate_limited, reply

    with FakeOpenAIServer() as srv:
        srv.push(rate_limited(0.05), reply("", [openai_call("FrameZoom", {"interval": [1, 2]})], reasoning="look"))
        gen = OpenAIAgentModel(srv.model, srv.url, retries=2, timeout_s=5).generate(
            {"messages": [{"role": "user", "content": "hi"}]}, max_tokens=16)
        posts = srv.posts
    assert posts == 2  # the 429 was retried once, honouring Retry-After
    assert gen.tool_calls[0]["function"]["name"] == "FrameZoom"
    assert json.loads(gen.tool_calls[0]["function"]["arguments"]) == {"interval": [1, 2]}
    assert gen.reasoning == "look"

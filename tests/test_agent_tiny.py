"""The agent end to end with a tiny offline transformers model (random weights) on fixture videos.

``ForcedReplyModel`` runs the real model on the real rendered chat (the family template, frames as
video with timestamps, crops as images, observations in tool turns) with decoding constrained to a
script, so the tool loop is exercised through transformers; the free-running model shows the loop ends
and respects its caps whatever the model writes.
"""

from __future__ import annotations

import math

import pytest
import torch

from agent.loop import Limits
from agent.models import ModelSummarizer
from agent.policy import AgentConfig, answer_question
from tests.agent_fixtures import ForcedReplyModel, make_tools, tiny_agent_model, tool_call  # noqa: F401
from tests.fixtures.videos import cfr_video, read_index

OPTIONS = ["a dog", "a cat", "a car", "rain"]


@pytest.fixture(scope="module")
def forced():
    model = ForcedReplyModel([]).load()
    return model


def script(model: ForcedReplyModel, replies: list[str]) -> ForcedReplyModel:
    model.replies, model.chats = list(replies), []
    return model


def test_tool_loop_through_transformers_respects_both_caps(tmp_path, forced):
    synthetic = cfr_video()
    replies = ["<think>look closer</think>\n" + tool_call("FrameZoom", interval=[1.0, 3.0]),
               tool_call("SpatialZoom", time=2.0, box=[0.0, 0.0, 0.5, 0.5]),
               tool_call("FrameZoom", interval=[3.0, 5.0]),
               "The best answer is B."]
    model = script(forced, replies)
    tools = make_tools(synthetic.path, tmp_path, zoom_frames=2)
    cfg = AgentConfig(frames=4, limits=Limits(max_steps=3, max_frames=7, max_new_tokens=64))
    traj = answer_question(model, tools, "What is shown?", OPTIONS, "agent", cfg)
    assert [t["text"] for t in traj.turns if t["role"] == "assistant"] == replies  # decoded as scripted
    assert (traj.answer, traj.status, traj.steps, traj.tool_calls) == ("B", "forced", 4, 3)
    tool_turns = [t for t in traj.turns if t["role"] == "tool"]
    assert "frames" in tool_turns[0] and "frames" in tool_turns[1]
    assert tool_turns[2]["text"].startswith("Frame budget used up: 7 of 7")
    assert traj.frames == 7
    zoom = model.chats[-1]["videos"][1]
    assert [read_index(f) for f in zoom.frames] == [synthetic.index_at(t) for t in zoom.timestamps]
    inputs = model.inputs(model.chats[-1])  # the last prompt held the two clips and the crop as vision inputs
    assert inputs["video_grid_thw"].shape[0] == 2 and inputs["image_grid_thw"].shape[0] == 1


def test_direct_answer_confidence_is_the_answer_token_probability(tmp_path, forced):
    model = script(forced, ["B"])
    tools = make_tools(cfr_video().path, tmp_path)
    traj = answer_question(model, tools, "What is shown?", OPTIONS, "uniform", AgentConfig(frames=4))
    assert traj.answer == "B" and 0.0 < traj.confidence < 1.0
    inputs = model.inputs(model.chats[0])
    with torch.inference_mode():
        logits = model._model(**inputs).logits[0, -1]
    (token,) = model.tokenizer("B", add_special_tokens=False).input_ids
    assert traj.confidence == pytest.approx(math.exp(torch.log_softmax(logits.float(), -1)[token].item()), rel=1e-3)


@pytest.mark.parametrize("gamma,route", [(0.0, "direct"), (0.7, "tools")])
def test_adaptive_gate_on_real_probabilities(tmp_path, forced, gamma, route):
    model = script(forced, ["C", tool_call("Answer", answer="D")])
    tools = make_tools(cfr_video().path, tmp_path)
    cfg = AgentConfig(frames=4, gamma=gamma, limits=Limits(max_new_tokens=32))
    traj = answer_question(model, tools, "What is shown?", OPTIONS, "adaptive", cfg)
    assert traj.confidence < 0.7  # random weights: the letter is far from certain
    assert traj.route == route and traj.answer == ("C" if route == "direct" else "D")


def test_free_running_tiny_model_ends_within_the_caps(tmp_path, tiny_agent_model):
    tools = make_tools(cfr_video().path, tmp_path, zoom_frames=2)
    cfg = AgentConfig(frames=4, limits=Limits(max_steps=2, max_frames=8, max_new_tokens=12))
    traj = answer_question(tiny_agent_model, tools, "What is shown?", OPTIONS, "agent", cfg)
    assert 1 <= traj.steps <= 3 and traj.frames <= 8
    assert traj.status in ("answered", "forced", "no_answer")
    summary = ModelSummarizer(tiny_agent_model).chat([{"role": "user", "content": "Summarize: hi"}], max_tokens=4)
    assert isinstance(summary.content, str)  # text-only chats render and generate too

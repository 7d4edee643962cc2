"""The agent loop and the policies with the scripted test double: caps, errors, routing, scoring."""

from __future__ import annotations

import pytest

from agent.loop import FRAME_BUDGET, Limits
from agent.policy import AgentConfig, PolicyError, answer_question
from agent.scripted import ScriptedModel, ScriptedReply
from dataset_builder.episodes import FORCE_ANSWER
from tests.agent_fixtures import make_tools, tool_call
from tests.fixtures.videos import cfr_video, read_index

OPTIONS = ["a dog", "a cat", "a car", "rain"]


def config(frames: int = 4, max_steps: int = 8, max_frames: int = 64, **kw) -> AgentConfig:
    return AgentConfig(frames=frames, limits=Limits(max_steps=max_steps, max_frames=max_frames), **kw)


def answer(script, tmp_path, mode="agent", cfg=None, **settings):
    model = ScriptedModel(script)
    tools = make_tools(cfr_video().path, tmp_path, model, **settings)
    return model, answer_question(model, tools, "What is shown?", OPTIONS, mode, cfg or config())


def test_step_cap_forces_an_answer(tmp_path):
    zoom = [tool_call("FrameZoom", interval=[float(i), float(i) + 1]) for i in range(3)]
    model, traj = answer([*zoom, "<think>enough</think>The best answer is C."], tmp_path, cfg=config(max_steps=3))
    assert (traj.answer, traj.status, traj.steps, traj.tool_calls) == ("C", "forced", 4, 3)
    last_chat = model.chats[-1]
    assert last_chat["messages"][-1] == {"role": "user", "content": [{"type": "text", "text": FORCE_ANSWER}]}
    assert len(last_chat["videos"]) == 4  # the initial frames and three zooms


def test_a_tool_call_at_the_forced_turn_is_not_run(tmp_path):
    script = [tool_call("FrameZoom", interval=[0.0, 1.0]), tool_call("FrameZoom", interval=[1.0, 2.0])]
    model, traj = answer(script, tmp_path, cfg=config(max_steps=1))
    assert (traj.answer, traj.status, traj.steps) == (None, "no_answer", 2)
    assert traj.frames == 4 + 4 and len([t for t in traj.turns if t["role"] == "tool"]) == 1


def test_frame_cap_counts_initial_and_returned_frames(tmp_path):
    script = [tool_call("FrameZoom", interval=[0.0, 2.0]), tool_call("FrameZoom", interval=[2.0, 4.0]),
              tool_call("SpatialZoom", time=1.0, box=[0, 0, 0.5, 0.5]), tool_call("Answer", answer="A")]
    model, traj = answer(script, tmp_path, cfg=config(frames=4, max_frames=9))
    tools = [t for t in traj.turns if t["role"] == "tool"]
    assert "frames" in tools[0]  # 4 + 4 = 8 frames
    assert tools[1]["text"] == FRAME_BUDGET.format(used=8, cap=9, name="FrameZoom", cost=4)
    assert "frames" in tools[2]  # the crop fits: 9
    assert traj.frames == 9 and traj.answer == "A"
    chat = model.chats[-1]
    assert sum(len(v.frames) for v in chat["videos"]) + len(chat["images"]) == 9


def test_bad_calls_get_error_observations_and_are_counted(tmp_path):
    script = ['<tool_call>{"name": "FrameZoom", "arguments": {"interval": [3, 1</tool_call>',
              tool_call("FrameZoom", interval=[3.0, 1.0]), tool_call("CaptionZoom", interval=[0.0, 1.0]),
              tool_call("FrameZoom", interval=[0.0, 60.0]), tool_call("Answer", answer="F"),
              tool_call("Answer", answer="d"), "I cannot tell."]
    _, traj = answer(script, tmp_path)
    errors = [t["text"] for t in traj.turns if t["role"] in ("user", "tool")]
    assert errors[0].startswith("Error: tool call is not valid JSON")
    assert "start < end" in errors[1]
    assert "unknown tool 'CaptionZoom'" in errors[2]
    assert "after the video" in errors[3]
    assert "letters A, B, C, D" in errors[4]
    assert traj.invalid_calls == 6  # the last Answer ("d") does not match ^[A-Z]$ either
    assert (traj.answer, traj.status, traj.steps) == (None, "no_answer", 7)


def test_a_reply_without_a_tool_call_is_the_final_answer(tmp_path):
    _, traj = answer(["<think>A dog? No, (B) fits.</think>The best answer is B."], tmp_path)
    assert (traj.answer, traj.how, traj.steps, traj.status) == ("B", "phrase", 1, "answered")


def test_uniform_mode_answers_at_once_from_n_frames(tmp_path):
    model, traj = answer([ScriptedReply("C", confidence=0.2)], tmp_path, mode="uniform", cfg=config(frames=6))
    (chat,) = model.chats
    assert chat["tools"] is None and len(chat["videos"]) == 1 and len(chat["videos"][0].frames) == 6
    assert "Respond with only the letter (A, B, C, D)" in chat["messages"][0]["content"][-1]["text"]
    assert (traj.answer, traj.route, traj.confidence, traj.frames) == ("C", "uniform", 0.2, 6)


@pytest.mark.parametrize("confidence,gamma,route,chats", [
    (0.9, 0.7, "direct", 1), (0.7, 0.7, "direct", 1), (0.5, 0.7, "tools", 2), (0.5, 0.4, "direct", 1),
    (0.99, 1.0, "tools", 2), (None, 0.0, "tools", 2),
])
def test_confidence_gate_routes_by_threshold(tmp_path, confidence, gamma, route, chats):
    script = [ScriptedReply("B", confidence=confidence), tool_call("Answer", answer="C")]
    model, traj = answer(script, tmp_path, mode="adaptive", cfg=config(gamma=gamma))
    assert traj.route == route and len(model.chats) == chats
    assert traj.confidence == confidence
    assert traj.answer == ("B" if route == "direct" else "C")
    if route == "tools":  # the tool loop starts from the same frames, counted once
        direct, agent = model.chats
        assert agent["tools"] and [c.timestamps for c in agent["videos"]] == [c.timestamps for c in direct["videos"]]
        assert traj.frames == 4


def test_adaptive_retrieves_clips_for_long_videos(tmp_path):
    synthetic = cfr_video()
    model, traj = answer([ScriptedReply("A", confidence=0.95)], tmp_path, mode="adaptive",
                         cfg=config(frames=4, short_video_s=5.0, top_k=2), clip_seconds=2.0)
    (chat,) = model.chats
    assert traj.initial["kind"] == "retrieved" and traj.frames == 4
    labels = [p["text"] for p in chat["messages"][0]["content"] if p["type"] == "text"][:-1]
    assert len(chat["videos"]) == 2 and all(label.startswith("Clip [") for label in labels)
    for clip in chat["videos"]:
        start = min(clip.timestamps) // 2 * 2
        assert all(start <= t < start + 2.0 for t in clip.timestamps) and len(clip.frames) == 2
        assert [read_index(f) for f in clip.frames] == [synthetic.index_at(t) for t in clip.timestamps]
    assert chat["videos"][0].timestamps[0] < chat["videos"][1].timestamps[0]


def test_short_videos_get_uniform_frames_in_adaptive_mode(tmp_path):
    _, traj = answer([ScriptedReply("A", confidence=0.95)], tmp_path, mode="adaptive", cfg=config(frames=4))
    assert traj.initial == {"kind": "uniform", "frames": 4}


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(PolicyError, match="unknown mode"):
        answer([], tmp_path, mode="always")
    with pytest.raises(PolicyError, match="gamma"):
        answer([], tmp_path, mode="adaptive", cfg=config(gamma=1.5))

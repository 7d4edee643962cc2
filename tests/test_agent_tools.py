"""Each video-space tool on real frames, driven through the agent loop by the scripted test double."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from agent.policy import AgentConfig, answer_question
from agent.retrieval import build_clip_index
from agent.scripted import ScriptedModel
from dataset_builder import video
from dataset_builder.executors import pixel_box
from tests.agent_fixtures import SMALL_PIXELS, make_tools, tool_call
from tests.builder_fixtures import SRT
from tests.fixtures.videos import cfr_video, read_index, real_clip, vfr_video

OPTIONS = ["a", "b", "c"]
ANSWER_B = tool_call("Answer", answer="B")


def run(script: list[str], path, tmp_path, frames: int = 4, **settings):
    model = ScriptedModel(script)
    tools = make_tools(path, tmp_path, model, **settings)
    traj = answer_question(model, tools, "What is shown?", OPTIONS, "agent", AgentConfig(frames=frames))
    return model, tools, traj


@pytest.mark.parametrize("make", [cfr_video, vfr_video], ids=["cfr", "vfr"])
def test_frame_zoom_returns_the_frames_displayed_at_the_requested_times(tmp_path, make):
    synthetic = make()
    model, _, traj = run([tool_call("FrameZoom", interval=[0.9, 2.3]), ANSWER_B], synthetic.path, tmp_path)
    assert traj.answer == "B" and traj.status == "answered"
    initial, zoom = model.chats[-1]["videos"]
    assert zoom.timestamps == pytest.approx(video.uniform_timestamps(0.9, 2.3, 4))
    assert [read_index(f) for f in zoom.frames] == [synthetic.index_at(t) for t in zoom.timestamps]
    assert [read_index(f) for f in initial.frames] == [synthetic.index_at(t) for t in initial.timestamps]
    tool_turn = model.chats[-1]["messages"][-1]
    assert tool_turn["role"] == "tool" and tool_turn["content"] == [{"type": "video"}]
    assert tool_turn["name"] == "FrameZoom" and tool_turn["tool_call_id"] == "call_0_0"


def test_spatial_zoom_returns_the_requested_box_of_the_frame(tmp_path):
    synthetic = cfr_video()
    box = [0.25, 0.0, 0.75, 0.5]
    model, _, traj = run([tool_call("SpatialZoom", time=2.0, box=box), ANSWER_B], synthetic.path, tmp_path)
    (crop,) = model.chats[-1]["images"]
    frame = video.frames_at(synthetic.path, [2.0])[0].image
    x0, y0, x1, y1 = pixel_box(box, frame.width, frame.height)
    assert (x0, y0, x1, y1) == (48, 0, 144, 64)
    assert crop.size == (x1 - x0, y1 - y0)
    np.testing.assert_array_equal(np.asarray(crop), np.asarray(frame.crop((x0, y0, x1, y1))))
    assert traj.turns[1]["frames"]["crop_box"] == [48, 0, 144, 64]
    assert model.chats[-1]["messages"][-1]["content"] == [{"type": "image"}]


def test_spatial_zoom_on_a_real_clip_keeps_the_region_within_the_pixel_budget(tmp_path):
    path = real_clip("bigbuckbunny")
    box = [0.5, 0.5, 1.0, 1.0]
    model, _, _ = run([tool_call("SpatialZoom", time=1.0, box=box), ANSWER_B], path, tmp_path, frames=2)
    (crop,) = model.chats[-1]["images"]
    frame = video.frames_at(path, [1.0])[0].image
    region = frame.crop(tuple(pixel_box(box, frame.width, frame.height)))
    assert crop.width * crop.height <= SMALL_PIXELS
    assert crop.width / crop.height == pytest.approx(region.width / region.height, rel=0.02)
    expected = np.asarray(region.resize(crop.size), np.float32)
    assert np.abs(np.asarray(crop, np.float32) - expected).mean() < 8  # the same picture, resampled


def test_clip_retrieval_ranks_clips_and_caches_the_index(tmp_path):
    synthetic = cfr_video()
    _, tools, traj = run([tool_call("ClipRetrieval", query="white blocks", top_k=2), ANSWER_B], synthetic.path,
                         tmp_path, clip_seconds=2.0)
    text = traj.turns[1]["text"]
    assert text.startswith("Most relevant clips:\n1. [") and text.count("\n") == 2
    hits = tools.retrieve("white blocks", 3)
    assert sorted(tuple(c) for c, _ in hits) == [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0)]
    cached = list((tmp_path / "cache" / "clip_index").glob("*.npz"))
    assert len(cached) == 1
    again = build_clip_index(synthetic.path, tools.index.duration_s, tools.clip_index().encoder, clip_seconds=2.0,
                             cache_dir=tmp_path / "cache")
    np.testing.assert_allclose(again.embeddings, tools.clip_index().embeddings)


def test_subtitle_tools_read_the_sidecar_track(tmp_path):
    path = tmp_path / "bbb.mp4"
    shutil.copy(real_clip("bigbuckbunny"), path)
    path.with_suffix(".srt").write_text(SRT)
    script = [tool_call("SubtitleZoom", interval=[2.2, 4.0]), tool_call("SubtitleRetrieval", query="rabbit sun",
                                                                        top_k=1),
              tool_call("SubtitleSummary", query="what happens"), ANSWER_B]
    model = ScriptedModel(script, summary="The rabbit wakes up and stretches.")
    tools = make_tools(path, tmp_path, model)
    traj = answer_question(model, tools, "What does the rabbit do?", OPTIONS, "agent", AgentConfig(frames=2))
    observed = [t["text"] for t in traj.turns if t["role"] == "tool"]
    assert observed[0] == "[2.5s-4.0s] The rabbit stretches in the morning sun."
    assert observed[1] == "[2.5s-4.0s] The rabbit stretches in the morning sun."
    assert observed[2] == "The rabbit wakes up and stretches."
    assert tools.index.subtitle_source == "sidecar"


def test_no_subtitles_flag_hides_the_track(tmp_path):
    path = tmp_path / "bbb.mp4"
    shutil.copy(real_clip("bigbuckbunny"), path)
    path.with_suffix(".srt").write_text(SRT)
    _, tools, traj = run([tool_call("SubtitleZoom", interval=[0.0, 5.0]), ANSWER_B], path, tmp_path, frames=2,
                         subtitles=False)
    assert tools.index.subtitles == [] and traj.turns[1]["text"] == "No subtitles in this interval."

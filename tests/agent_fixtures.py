"""Fixtures for the agent and evaluation tests: benchmark annotation files in their real field layouts,
tool settings with tiny frames, and a tiny transformers model whose emitted tokens follow a script.

``ForcedReplyModel`` runs the real tiny Qwen2.5-VL (random weights) on the real rendered chat, frames
and all, but constrains decoding to a scripted reply (``prefix_allowed_tokens_fn``): the conversation
machinery, the processor inputs and the probabilities are real, only the choice of tokens is scripted.
The probabilities come from the raw logits, which the constraint does not touch.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from agent.models import Chat, Generation, TransformersAgentModel
from agent.scripted import ScriptedModel
from agent.video_tools import Encoders, ToolSettings, open_video
from tests.fixtures.videos import cfr_video

SMALL_PIXELS = 192 * 192  # the index pattern stays readable; the synthetic videos are 192x128


def tool_settings(tmp: Path, **overrides: Any) -> ToolSettings:
    values: dict[str, Any] = {"zoom_frames": 4, "max_pixels": SMALL_PIXELS, "clip_encoder": "tiny:clip",
                              "cache_dir": tmp / "cache"}
    return ToolSettings(**(values | overrides))


_ENCODERS = Encoders()  # the tiny CLIP is built once per test session


def make_tools(path: Path, tmp: Path, model: Any = None, **overrides: Any):
    summarizer = getattr(model, "summarizer", None) or ScriptedModel([]).summarizer
    return open_video(path, summarizer=summarizer, settings=tool_settings(tmp, **overrides), encoders=_ENCODERS)


def tool_call(name: str, **arguments: Any) -> str:
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': arguments})}\n</tool_call>"


class ForcedReplyModel(TransformersAgentModel):
    """The tiny random-weight Qwen2.5-VL, decoding constrained to scripted replies (in order)."""

    def __init__(self, replies: list[str], **kwargs: Any):
        super().__init__("tiny:qwen2_5_vl", max_pixels=kwargs.pop("max_pixels", 56 * 56), **kwargs)
        self.replies = list(replies)
        self.chats: list[Chat] = []
        self._target: list[int] = []

    def generate(self, chat: Chat, *, max_tokens: int, logprobs: bool = False) -> Generation:
        reply = self.replies[len(self.chats)]
        self.chats.append({**chat, "messages": list(chat["messages"]), "videos": list(chat["videos"]),
                           "images": list(chat["images"])})
        eos = self.load()._model.generation_config.eos_token_id
        eos = eos[0] if isinstance(eos, list) else eos
        self._target = self.tokenizer(reply, add_special_tokens=False).input_ids + [eos]
        return super().generate(chat, max_tokens=len(self._target) + 1, logprobs=logprobs)

    def generate_kwargs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        start, target = inputs["input_ids"].shape[1], self._target

        def allowed(batch_id: int, ids: Any) -> list[int]:
            k = len(ids) - start
            return [target[min(k, len(target) - 1)]]

        return {"prefix_allowed_tokens_fn": allowed}


@pytest.fixture(scope="session")
def tiny_agent_model() -> TransformersAgentModel:
    """The free-running tiny model (random weights: its replies are noise)."""
    return TransformersAgentModel("tiny:qwen2_5_vl", max_pixels=56 * 56).load()


# --------------------------------------------------------------------------------- benchmark fixtures


def mlvu_raw(root: Path) -> Path:
    """Two per-task files as MLVU ships them (answers as option text)."""
    folder = root / "mlvu_json"
    folder.mkdir(parents=True)
    plot = [
        {"video": "movie_a.mp4", "duration": 6.0, "question": "What happens first?",
         "candidates": ["a dog runs", "a cat sleeps", "a car stops", "it rains"], "answer": "a cat sleeps",
         "question_type": "plotQA"},
        {"video": "movie_b.mp4", "duration": 6.0, "question": "Who speaks?",
         "candidates": ["the man", "the woman", "the child", "nobody"], "answer": "nobody",
         "question_type": "plotQA"},
    ]
    count = [{"video": "count_a.mp4", "duration": 6.0, "question": "How many blocks?",
              "candidates": ["1", "2", "3", "12"], "answer": "12", "question_type": "count"}]
    (folder / "1_plotQA.json").write_text(json.dumps(plot))
    (folder / "4_count.json").write_text(json.dumps(count))
    return folder


def mlvu_mirror(root: Path) -> Path:
    """The mirror's parquet: options embedded in the question, answer as a letter."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"video_name": "movie_a.mp4", "duration": 6.0,
             "question": "What happens first?\n(A) a dog runs\n(B) a cat sleeps\n(C) a car stops",
             "candidates": ["a dog runs", "a cat sleeps", "a car stops"], "answer": "B", "task_type": "plotQA",
             "question_id": "plotQA_0"},
            {"video_name": "count_a.mp4", "duration": 6.0, "question": "How many?\nA. 1\nB. 2",
             "candidates": ["1", "2"], "answer": "A", "task_type": "count", "question_id": "count_0"}]
    path = root / "mlvu_test.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def lvbench_meta(root: Path) -> Path:
    videos = [
        {"key": "vidA", "type": "documentary", "video_info": {"duration_minutes": 65.5, "fps": 30.0},
         "qa": [{"uid": 11, "question": "What is shown (in 2010) first?\n(A) a boat\n(B) a plane (toy)\n(C) a car\n"
                 "(D) a train", "answer": "B", "question_type": ["entity recognition"], "time_reference": "00:10"},
                {"uid": 12, "question": "Why did he leave?\n(A) rain\n(B) work\n(C) love\n(D) war", "answer": "D",
                 "question_type": ["reasoning", "event understanding"], "time_reference": ""}]},
        {"key": "vidB", "type": "sports", "video_info": {"duration_minutes": 30},
         "qa": [{"uid": 21, "question": "Who won?\n(A) red\n(B) blue\n(C) green\n(D) none", "answer": "A",
                 "question_type": ["key information retrieval"], "time_reference": ""}]},
    ]
    path = root / "video_info.meta.jsonl"
    path.write_text("".join(json.dumps(v) + "\n" for v in videos))
    return path


def videomme_official(root: Path) -> Path:
    data = [{"video_id": "001", "duration_category": "short", "video_category": "Knowledge",
             "url": "https://www.youtube.com/watch?v=fFjv93ACGo8",
             "questions": [{"question_id": "001-1", "task_type": "Counting Problem", "question": "How many?",
                            "choices": ["A. one", "B. two", "C. three", "D. four"], "answer": "C"},
                           {"question_id": "001-2", "task_type": "Object Recognition", "question": "What is it?",
                            "choices": ["A. cat", "B. dog", "C. cow", "D. hen"], "answer": "A"}]},
            {"video_id": "601", "duration_category": "long", "video_category": "Sports",
             "url": "https://www.youtube.com/watch?v=LongVid_01",
             "questions": [{"question_id": "601-1", "task_type": "Action Reasoning", "question": "Why?",
                            "choices": ["A. w", "B. x", "C. y", "D. z"], "answer": "D"}]}]
    path = root / "videomme.json"
    path.write_text(json.dumps(data))
    return path


def videomme_flat(root: Path) -> Path:
    rows = [{"video_id": "001", "duration": "short", "domain": "Knowledge", "sub_category": "Humanity",
             "url": "https://www.youtube.com/watch?v=fFjv93ACGo8", "videoID": "fFjv93ACGo8", "question_id": "001-1",
             "task_type": "Counting Problem", "question": "How many?",
             "options": ["A. one", "B. two", "C. three", "D. four"], "answer": "C"}]
    path = root / "videomme_flat.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def lvb_val(root: Path) -> Path:
    rows = [{"video_id": "86CxyhFV9MI", "id": "86CxyhFV9MI_0", "video_path": "86CxyhFV9MI.mp4",
             "subtitle_path": "86CxyhFV9MI_en.json", "correct_choice": 2, "question": "What color is the car?",
             "candidates": ["red", "blue", "white", "black"], "duration": 9.5, "duration_group": 15,
             "question_category": "S2E", "starting_timestamp_for_subtitles": 0},
            {"video_id": "xyz", "id": "xyz_1", "video_path": "xyz.mp4", "subtitle_path": "xyz_en.json",
             "correct_choice": 0, "question": "Who enters?", "option0": "a man", "option1": "a woman",
             "option2": "a dog", "option3": "N/A", "option4": "N/A", "duration": 1200.0, "duration_group": 3600,
             "question_category": "E2O", "starting_timestamp_for_subtitles": 10.0}]
    path = root / "lvb_val.json"
    path.write_text(json.dumps(rows))
    return path


def lvb_subtitles(root: Path) -> tuple[Path, Path]:
    folder = root / "subtitles"
    folder.mkdir(parents=True, exist_ok=True)
    timestamped = folder / "86CxyhFV9MI_en.json"
    timestamped.write_text(json.dumps([{"timestamp": [0.5, 2.0], "text": "hello there"},
                                       {"timestamp": [3.0, 4.5], "text": "a red car"}]))
    clock = folder / "xyz_en.json"
    clock.write_text(json.dumps([{"start": "00:00:12.5", "end": "00:00:14.0", "line": "he walks in"},
                                 {"start": "00:01:10.0", "end": "00:01:12.0", "line": "goodbye"}]))
    return timestamped, clock


def eval_videos(root: Path, names: list[str]) -> Path:
    """A videos folder holding the synthetic 6 s CFR video under each of ``names``."""
    folder = root / "videos"
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(cfr_video().path, folder / name)
    return folder

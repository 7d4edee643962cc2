"""Questions importers, subtitle parsing, tool-call parsing and the episode filter."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dataset_builder.episodes import Episode, filter_episodes
from dataset_builder.questions import Question, QuestionError, normalize_answer, read_questions
from dataset_builder.subtitles import parse_subtitles
from dataset_builder.toolcall_parse import parse_turn
from dataset_builder.tools import ALL_TOOLS, FRAME_ZOOM, SPATIAL_ZOOM, ToolArgumentError
from validation.record import CAPTION_ONLY_TOOLS, FRAME_TOOLS


@pytest.mark.parametrize("answer,expected", [("b", "B"), (2, "C"), ("a cat", "B"), ("B. a cat", "B")])
def test_answer_forms_normalize_to_letters(answer, expected):
    assert normalize_answer(answer, ["a dog", "a cat", "a cow"], "q") == expected


@pytest.mark.parametrize("answer", ["D", 3, -1, "a horse", True, None])
def test_answers_outside_the_options_are_refused(answer):
    with pytest.raises(QuestionError, match="where"):
        normalize_answer(answer, ["a dog", "a cat", "a cow"], "where")


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_cgbench_layout(tmp_path):
    path = _write(tmp_path, "cgbench.json", [{"qid": 7, "video_uid": "abc", "duration": 1800, "question": "Who?",
                                               "choices": ["x", "y", "z"], "right_answer": "C", "answer": "z",
                                               "clue_intervals": [[1, 2]], "domain": "d", "sub_category": "s"}])
    [q] = read_questions(path)
    assert (q.id, q.video, q.answer, q.options, q.source) == ("7", "abc.mp4", "C", ["x", "y", "z"], "cgbench")


def test_videomme_official_and_flat_layouts(tmp_path):
    official = _write(tmp_path, "vmme.json", [{"video_id": "001", "duration_category": "long", "video_category": "c",
                                               "url": "u", "questions": [
                                                   {"question_id": "001-1", "task_type": "t", "question": "Q?",
                                                    "choices": ["A. one", "B. two", "C. three", "D. four"],
                                                    "answer": "B"}]}])
    [q] = read_questions(official)
    assert (q.video, q.options[1], q.answer) == ("001.mp4", "two", "B")
    flat = _write(tmp_path, "flat.json", [{"video_id": "001", "duration": "long", "domain": "d", "sub_category": "s",
                                           "videoID": "fFjv93ACGo8", "question_id": "001-1", "task_type": "t",
                                           "question": "Q?", "options": ["A. one", "B. two", "C. 3", "D. 4"],
                                           "answer": "D"}])
    [q] = read_questions(flat, layout="videomme")
    assert (q.video, q.answer) == ("fFjv93ACGo8.mp4", "D")


def test_mlvu_answer_is_option_text(tmp_path):
    path = _write(tmp_path, "1_plotQA.json", [{"video": "movie.mp4", "duration": 500, "question": "Why?",
                                               "candidates": ["because", "never", "always"], "answer": "never",
                                               "question_type": "plotQA"}])
    [q] = read_questions(path)
    assert q.answer == "B" and q.video == "movie.mp4"
    assert read_questions(path)[0].id == q.id  # stable ids across runs


def test_longvideobench_index_answers_and_option_columns(tmp_path):
    path = _write(tmp_path, "lvb_val.json", [
        {"video_id": "v", "id": "v_0", "video_path": "v.mp4", "subtitle_path": "v_en.json", "correct_choice": 2,
         "question": "Q?", "candidates": ["a", "b", "c", "d"], "duration": 100, "duration_group": 600,
         "question_category": "x", "starting_timestamp_for_subtitles": 0},
        {"video_id": "w", "id": "w_0", "video_path": "w.mp4", "correct_choice": 0, "question": "Q?",
         "option0": "p", "option1": "q", "option2": "", "duration": 50}])
    q1, q2 = read_questions(path, layout="longvideobench")
    assert q1.answer == "C" and q2.options == ["p", "q"] and q2.answer == "A"


def test_jsonl_with_a_broken_line_names_the_line(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "a", "video": "v.mp4", "question": "?", "options": ["x", "y"], "answer": 0}\n{oops\n')
    with pytest.raises(QuestionError, match=r"q.jsonl: line 2"):
        read_questions(path)


def test_duplicate_question_ids_are_refused(tmp_path):
    item = {"id": "a", "video": "v.mp4", "question": "?", "options": ["x", "y"], "answer": 0}
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps(item) + "\n" + json.dumps(item) + "\n")
    with pytest.raises(QuestionError, match="duplicate question id"):
        read_questions(path)


def test_srt_and_vtt_parse_to_the_same_lines():
    srt = "1\n00:00:01,000 --> 00:00:02,500\nHello <i>there</i>\n\n2\n00:01:02,000 --> 00:01:03,000\nSecond\nline\n"
    vtt = "WEBVTT\n\n00:01.000 --> 00:02.500 align:start\nHello there\n\n01:02.000 --> 01:03.000\nSecond\nline\n"
    a, b = parse_subtitles(srt), parse_subtitles(vtt)
    assert [(x.start_s, x.end_s, x.text) for x in a] == [(1.0, 2.5, "Hello there"), (62.0, 63.0, "Second line")]
    assert a == b


@given(st.text())
def test_subtitle_parser_never_crashes(text):
    for line in parse_subtitles(text):
        assert line.end_s >= line.start_s


def test_openai_and_hermes_tool_calls_parse_alike():
    hermes = parse_turn('<think>look</think>\n<tool_call>{"name": "FrameZoom", "arguments": {"interval": [1, 2]}}'
                        '</tool_call>')
    openai = parse_turn("", [{"function": {"name": "FrameZoom", "arguments": '{"interval": [1, 2]}'}}], "look")
    assert hermes.calls == openai.calls and hermes.reasoning == openai.reasoning == "look"


def test_malformed_tool_calls_become_errors_not_exceptions():
    turn = parse_turn('<tool_call>{"name": "FrameZoom", "arguments": {"interval": [1, </tool_call>'
                      '<tool_call>["list"]</tool_call>')
    assert not turn.calls and len(turn.errors) == 2


@given(st.text(), st.lists(st.dictionaries(st.text(), st.text() | st.integers() | st.none())))
def test_tool_call_parser_never_crashes(text, raw_calls):
    turn = parse_turn(text, raw_calls)
    assert all(isinstance(c.arguments, dict) for c in turn.calls)


def test_tool_specs_agree_with_the_record_contract():
    assert {t.name for t in ALL_TOOLS if t.returns == "frames"} == FRAME_TOOLS
    assert {t.name for t in ALL_TOOLS if t.caption_space_only} == CAPTION_ONLY_TOOLS


@pytest.mark.parametrize("tool,arguments,message", [
    (FRAME_ZOOM, {"interval": [5, 1]}, "start < end"),
    (FRAME_ZOOM, {"interval": [1]}, "interval"),
    (FRAME_ZOOM, {"interval": [1, 2], "extra": 1}, "extra"),
    (SPATIAL_ZOOM, {"time": 3, "box": [0.5, 0.5, 0.2, 0.9]}, "x0 < x1"),
    (SPATIAL_ZOOM, {"box": [0, 0, 1, 1]}, "time"),
])
def test_tool_argument_errors_say_what_is_wrong(tool, arguments, message):
    with pytest.raises(ToolArgumentError, match=message):
        tool.validate(arguments)


def _episode(sample, answer, calls=(), invalid=0, status="answered"):
    messages = [{"role": "assistant", "tool_calls": [{"function": {"name": n, "arguments": a}} for n, a in calls]}]
    return Episode("q", sample, messages, answer, status, invalid_calls=invalid)


def test_filter_keeps_correct_distinct_and_counts_every_drop():
    q = Question("q", "v.mp4", "?", ["x", "y"], "A")
    episodes = [_episode(0, "A", [("FrameZoom", {"interval": [1, 2]})]),
                _episode(1, "A", [("FrameZoom", {"interval": [1, 2]})]),
                _episode(2, "B"), _episode(3, None, status="no_answer"), _episode(4, "A", invalid=1),
                _episode(5, "A", [("ClipRetrieval", {"query": "x"})])]
    result = filter_episodes(q, episodes)
    assert [e.sample for e, _ in result.kept] == [0, 5]
    assert dict(result.dropped) == {"duplicate": 1, "wrong_answer": 1, "no_answer": 1, "invalid_tool_call": 1}
    assert len(result.kept) + sum(result.dropped.values()) == len(episodes)


def test_all_wrong_fallback_is_opt_in_and_flagged():
    q = Question("q", "v.mp4", "?", ["x", "y"], "A")
    episodes = [_episode(0, "B"), _episode(1, "B")]
    assert not filter_episodes(q, episodes).kept
    kept = filter_episodes(q, episodes, keep_wrong_when_all_fail=True).kept
    assert [(e.sample, why) for e, why in kept] == [(0, "all_wrong_fallback")]


def test_lenient_reading_skips_bad_items_with_file_and_line(tmp_path):
    good = {"id": "a", "video": "v.mp4", "question": "?", "options": ["x", "y"], "answer": 0}
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join([json.dumps(good), "{oops", json.dumps({**good, "id": "b", "answer": "zebra"}),
                               json.dumps(good), json.dumps({**good, "id": "c"}), "[1, 2]"]) + "\n")
    skipped: list[str] = []
    questions = read_questions(path, skipped=skipped)
    assert [q.id for q in questions] == ["a", "c"]
    assert len(skipped) == 4
    assert any("line 2 is not valid JSON" in s for s in skipped)
    assert any("line 3" in s and "matches no option" in s for s in skipped)
    assert any("line 4" in s and "duplicate question id 'a'" in s for s in skipped)
    assert any("line 6" in s and "expected a JSON object" in s for s in skipped)

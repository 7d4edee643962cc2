"""Benchmark readers on small fixtures in each benchmark's real field layout."""

from __future__ import annotations

import json

import pytest

from agent.benchmarks import (
    BenchmarkError,
    VideoResolver,
    find_subtitles,
    read_benchmark,
    read_subtitles,
    split_inline_options,
)
from tests.agent_fixtures import (
    lvb_subtitles,
    lvb_val,
    lvbench_meta,
    mlvu_mirror,
    mlvu_raw,
    videomme_flat,
    videomme_official,
)


def test_mlvu_raw_folder_answers_as_option_text(tmp_path):
    items = read_benchmark("mlvu", mlvu_raw(tmp_path))
    assert [(i.video, i.answer_letter, i.task_type) for i in items] == [
        ("movie_a.mp4", "B", "plotQA"), ("movie_b.mp4", "D", "plotQA"), ("count_a.mp4", "D", "count")]
    assert items[0].options == ("a dog runs", "a cat sleeps", "a car stops", "it rains")
    assert items[0].duration_s == 6.0 and items[0].benchmark == "mlvu"
    assert len({i.id for i in items}) == 3


def test_mlvu_single_task_file(tmp_path):
    items = read_benchmark("mlvu", mlvu_raw(tmp_path) / "4_count.json")
    assert [(i.answer_letter, i.task_type) for i in items] == [("D", "count")]


def test_mlvu_mirror_parquet_strips_embedded_options(tmp_path):
    items = read_benchmark("mlvu", mlvu_mirror(tmp_path))
    assert [(i.id, i.video, i.answer_letter, i.task_type) for i in items] == [
        ("plotQA_0", "movie_a.mp4", "B", "plotQA"), ("count_0", "count_a.mp4", "A", "count")]
    assert items[0].question == "What happens first?"
    assert items[1].question == "How many?"


def test_lvbench_inline_options(tmp_path):
    items = read_benchmark("lvbench", lvbench_meta(tmp_path))
    assert [i.id for i in items] == ["vidA_11", "vidA_12", "vidB_21"]
    first = items[0]
    assert first.question == "What is shown (in 2010) first?"
    assert first.options == ("a boat", "a plane (toy)", "a car", "a train")
    assert first.answer_letter == "B" and first.video == "vidA"
    assert first.duration_s == pytest.approx(65.5 * 60)
    assert items[1].task_type == "reasoning|event understanding"
    assert items[2].duration_s == 1800


def test_split_inline_options_needs_two():
    with pytest.raises(BenchmarkError, match="no inline options"):
        split_inline_options("What? (A) only one")


def test_videomme_official_nested(tmp_path):
    items = read_benchmark("videomme", videomme_official(tmp_path))
    assert [(i.id, i.video, i.answer_letter, i.duration_category) for i in items] == [
        ("001-1", "fFjv93ACGo8", "C", "short"), ("001-2", "fFjv93ACGo8", "A", "short"),
        ("601-1", "LongVid_01", "D", "long")]
    assert items[0].options == ("one", "two", "three", "four")
    assert items[0].task_type == "Counting Problem"


def test_videomme_flat_mirror(tmp_path):
    (item,) = read_benchmark("videomme", videomme_flat(tmp_path))
    assert (item.id, item.video, item.answer_letter, item.duration_category) == ("001-1", "fFjv93ACGo8", "C", "short")
    assert item.options == ("one", "two", "three", "four")


def test_longvideobench_candidates_and_option_fields(tmp_path):
    items = read_benchmark("longvideobench", lvb_val(tmp_path))
    first, second = items
    assert (first.answer_letter, first.duration_group, first.task_type) == ("C", "15", "S2E")
    assert first.options == ("red", "blue", "white", "black")
    assert second.options == ("a man", "a woman", "a dog")  # "N/A" padding dropped
    assert second.answer_letter == "A" and second.subtitle_offset_s == 10.0
    assert first.subtitles == "86CxyhFV9MI_en.json"


def test_longvideobench_subtitles_both_layouts(tmp_path):
    timestamped, clock = lvb_subtitles(tmp_path)
    lines = read_subtitles(timestamped)
    assert [(s.start_s, s.end_s, s.text) for s in lines] == [(0.5, 2.0, "hello there"), (3.0, 4.5, "a red car")]
    lines = read_subtitles(clock, offset_s=10.0)
    assert [(s.start_s, s.end_s, s.text) for s in lines] == [(2.5, 4.0, "he walks in"), (60.0, 62.0, "goodbye")]


def test_find_subtitles_and_videos(tmp_path):
    items = read_benchmark("longvideobench", lvb_val(tmp_path))
    lvb_subtitles(tmp_path)
    videos = tmp_path / "videos" / "nested"
    videos.mkdir(parents=True)
    (videos / "86CxyhFV9MI.mp4").write_bytes(b"x")
    resolver = VideoResolver(tmp_path / "videos")
    path = resolver.find(items[0].video)
    assert path == videos / "86CxyhFV9MI.mp4"
    assert resolver.find("fFjv93ACGo8") is None
    assert find_subtitles(items[0], path, [tmp_path / "subtitles"]) == tmp_path / "subtitles" / "86CxyhFV9MI_en.json"
    (videos / "stem.mp4").write_bytes(b"x")
    (videos / "stem.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nhi\n")
    stem = VideoResolver(tmp_path / "videos").find("stem")  # a fresh resolver: the folder index is cached
    assert stem == videos / "stem.mp4"
    sidecar = find_subtitles(read_benchmark("videomme", videomme_flat(tmp_path))[0], stem, [])
    assert sidecar == videos / "stem.srt"


@pytest.mark.parametrize("bench,record,problem", [
    ("longvideobench", [{"id": "x", "video_path": "v.mp4"}], "missing fields ['question']"),
    ("videomme", [{"video_id": "1", "questions": [{"question_id": "1-1", "question": "q", "answer": "A"}]}],
     "options"),
    ("mlvu", [{"video": "v.mp4", "question": "q", "candidates": ["a", "b"], "answer": "zzz"}], "matches no option"),
])
def test_bad_items_name_file_and_item(tmp_path, bench, record, problem):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(record))
    with pytest.raises(BenchmarkError, match="bad.json") as info:
        read_benchmark(bench, path)
    assert problem in str(info.value)


def test_unknown_benchmark_and_missing_file(tmp_path):
    with pytest.raises(BenchmarkError, match="unknown benchmark"):
        read_benchmark("cgbench", tmp_path)
    with pytest.raises(BenchmarkError, match="does not exist"):
        read_benchmark("mlvu", tmp_path / "nope.json")


def test_duplicate_ids_rejected(tmp_path):
    path = tmp_path / "lvb.json"
    row = {"id": "a", "video_path": "v.mp4", "question": "q", "candidates": ["x", "y"], "correct_choice": 0}
    path.write_text(json.dumps([row, row]))
    with pytest.raises(BenchmarkError, match="duplicate"):
        read_benchmark("longvideobench", path)

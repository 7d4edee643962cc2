"""Each benchmark's metric against hand-computed scores, and answer extraction from final replies."""

from __future__ import annotations

import math

import pytest

from agent.answers import TokenLogprob, answer_confidence, extract_answer, token_spans
from agent.metrics import benchmark_metric

OPTIONS = ["a dog runs", "a cat sleeps", "a car stops", "it rains"]


def row(correct: bool, **groups) -> dict:
    return {"gold": "A", "correct": correct, **groups}


def test_mlvu_m_avg_is_unweighted_mean_of_task_accuracies():
    results = [row(True, task_type="plotQA"), row(True, task_type="plotQA"), row(False, task_type="plotQA"),
               row(True, task_type="count")]
    metric = benchmark_metric("mlvu", results)
    # plotQA 2/3, count 1/1: M-Avg = (66.67 + 100) / 2 = 83.33; plain accuracy would be 3/4 = 75.
    assert metric["metric"] == "m_avg"
    assert metric["score"] == pytest.approx(83.33)
    assert metric["accuracy"] == 75.0
    assert metric["groups"]["task_type"] == {"count": {"accuracy": 100.0, "n": 1},
                                             "plotQA": {"accuracy": 66.67, "n": 3}}


def test_videomme_by_duration():
    results = [row(True, duration_category="short"), row(False, duration_category="short"),
               row(True, duration_category="long"), row(True, duration_category="long"),
               row(False, duration_category="medium")]
    metric = benchmark_metric("videomme", results)
    assert metric["score"] == 60.0  # 3/5
    assert list(metric["groups"]["duration_category"]) == ["short", "medium", "long"]
    assert {k: v["accuracy"] for k, v in metric["groups"]["duration_category"].items()} == {
        "short": 50.0, "medium": 0.0, "long": 100.0}


def test_longvideobench_by_duration_group_in_numeric_order():
    results = [row(True, duration_group="600"), row(False, duration_group="3600"), row(True, duration_group="15"),
               row(True, duration_group="3600"), row(False, duration_group="60"), row(True, duration_group="60")]
    metric = benchmark_metric("longvideobench", results)
    assert metric["score"] == pytest.approx(66.67)  # 4/6
    groups = metric["groups"]["duration_group"]
    assert list(groups) == ["15", "60", "600", "3600"]
    assert [g["accuracy"] for g in groups.values()] == [100.0, 50.0, 100.0, 50.0]


def test_lvbench_accuracy_and_multi_type_groups():
    results = [row(True, task_type="reasoning|event understanding"), row(False, task_type="reasoning"),
               row(True, task_type="entity recognition")]
    metric = benchmark_metric("lvbench", results)
    assert metric["score"] == pytest.approx(66.67)
    assert metric["groups"]["task_type"]["reasoning"] == {"accuracy": 50.0, "n": 2}
    assert metric["groups"]["task_type"]["event understanding"] == {"accuracy": 100.0, "n": 1}


def test_unscored_results_are_left_out():
    results = [row(True), {"gold": None, "correct": False}]
    assert benchmark_metric("lvbench", results)["n"] == 1
    assert benchmark_metric("lvbench", [{"gold": None}])["score"] is None


@pytest.mark.parametrize("text,letter,how", [
    ('<think>A is wrong, maybe C or D.</think><tool_call>\n{"name": "Answer", "arguments": {"answer": "B"}}\n'
     "</tool_call>", "B", "tool_call"),
    ("<think>Option A shows a dog; (C) a car.</think>The best answer is D.", "D", "phrase"),
    ("Looking at frame 3, A man walks in. Answer: (C)", "C", "phrase"),
    ("B", "B", "bare"),
    ("(C) a car stops", "C", "bare"),
    ("it rains.", "D", "option_text"),
    ("A man opens the door, so I pick C", "C", "last_letter"),
    ("I think A dog is there; final: B", "B", "last_letter"),
])
def test_extract_answer_reads_the_final_answer(text, letter, how):
    match = extract_answer(text, OPTIONS)
    assert (match.letter, match.how) == (letter, how)
    if match.start is not None and how != "option_text":
        assert text[match.start:match.end] == letter


@pytest.mark.parametrize("text", ["<think>The answer is B.</think>", "A man runs away.", "E", "The answer is F", ""])
def test_extract_answer_none_when_final_text_has_no_answer(text):
    assert extract_answer(text, OPTIONS) is None


def test_extract_answer_from_openai_tool_calls_and_strict_mode():
    calls = [{"function": {"name": "FrameZoom", "arguments": "{}"}},
             {"function": {"name": "Answer", "arguments": '{"answer": "C"}'}}]
    assert extract_answer("", OPTIONS, calls).letter == "C"
    assert extract_answer("maybe C", OPTIONS, lenient=False) is None


def test_confidence_is_geometric_mean_of_answer_tokens():
    text = 'The best answer is "B"'
    pieces = ["The", " best", " answer", " is", ' "', "B", '"']
    logprobs = [-0.1, -0.2, -0.3, -0.4, -0.5, math.log(0.8), -0.7]
    match = extract_answer(text, OPTIONS)
    assert answer_confidence(match, token_spans(pieces, logprobs)) == pytest.approx(0.8)
    # a letter written by two tokens: geometric mean of both
    tokens = [TokenLogprob(0, 1, math.log(0.5)), TokenLogprob(0, 1, math.log(0.8))]
    assert answer_confidence(extract_answer("B", OPTIONS), tokens) == pytest.approx(math.sqrt(0.4))
    assert answer_confidence(None, tokens) is None

"""The teacher loop against a real HTTP server speaking the OpenAI protocol, through the real `openai` client.

The server (tests/fake_openai_server.py) runs a scripted policy on 127.0.0.1: tool calls in both formats,
malformed calls, 429 with Retry-After, 500s, timeouts, connection resets, truncated bodies, a model that
never calls a tool and one that repeats the same call forever. Every fault ends as a counted reason;
retries are bounded; a whole `videothinker build` with `teacher.backend: openai` finishes and reports them.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from dataset_builder import pipeline
from dataset_builder.backends import BackendError, OpenAIBackend
from dataset_builder.build import build_command
from dataset_builder.episodes import filter_episodes, run_episode
from tests.fake_openai_server import (
    FakeOpenAIServer,
    delay,
    openai_call,
    rate_limited,
    raw,
    reply,
    reset,
    short_body,
    status,
    truncated_json,
)
from tests.fixtures.videos import cfr_video, vfr_video
from tests.reliability_fixtures import (
    QUESTION,
    FirstTimeRateLimited,
    good_teacher,
    make_tools,
    malformed_then_answers,
    never_calls_a_tool,
    repeats_forever,
    route_by_question,
    step_of,
)
from validation.validator import validate_path

MAX_STEPS = 3


@pytest.fixture(scope="module")
def server():
    with FakeOpenAIServer() as srv:
        yield srv


@pytest.fixture
def fake(server):
    server.queue.clear()
    server.requests.clear()
    server.policy = None
    return server


@pytest.fixture(scope="module")
def tools():
    video = cfr_video()
    return make_tools(video.path, video.duration_s)


def backend(server, timeout_s: float = 2.0, max_retries: int = 2) -> OpenAIBackend:
    return OpenAIBackend(server.model, base_url=server.url, timeout_s=timeout_s, max_retries=max_retries)


def episode(server, tools, **kw):
    return run_episode(QUESTION, tools, backend(server, **kw), sample=0, max_steps=MAX_STEPS, temperature=0.7,
                       seed=7, max_tokens=64)


@pytest.mark.parametrize("fmt", ["openai", "hermes"])
def test_tool_calls_in_both_formats_drive_the_loop(fake, tools, fmt):
    fake.policy = good_teacher("A", fmt)
    ep = episode(fake, tools)
    assert (ep.status, ep.answer, ep.invalid_calls, ep.steps) == ("answered", "A", 0, 3)
    names = [c["function"]["name"] for m in ep.messages for c in m.get("tool_calls") or []]
    assert names == ["ClipRetrieval", "CaptionZoom", "Answer"]
    observations = [m for m in ep.messages if m["role"] == "tool"]
    assert "Most relevant clips" in observations[0]["content"]
    assert observations[1]["content"] == tools.services.captioner.text
    # the wire: tool specs offered, observations sent back, sampling parameters passed through
    first, last = fake.requests[0]["body"], fake.requests[-1]["body"]
    assert {t["function"]["name"] for t in first["tools"]} >= {"ClipRetrieval", "CaptionZoom", "Answer"}
    assert first["temperature"] == 0.7 and first["max_tokens"] == 64 and first["seed"] == 7000
    assert [m["role"] for m in last["messages"]] == ["system", "user", "assistant", "tool", "assistant", "tool"]
    assert filter_episodes(QUESTION, [ep]).kept


def test_multi_turn_requests_follow_the_strict_wire_format(fake, tools):
    """Arguments go back as JSON strings, reasoning as reasoning_content, no empty tool_calls: a strict server
    (the real API, vLLM's request validation) would refuse the episode's internal message form."""
    from dataset_builder.backends import _wire_messages
    from tests.fake_openai_server import protocol_errors

    fake.policy = malformed_then_answers("A")
    ep = episode(fake, tools)
    assert ep.status == "answered"
    assert all(r["body"]["model"] and not protocol_errors(r["body"]) for r in fake.requests)
    internal = protocol_errors({"model": "m", "messages": ep.messages})
    assert any("arguments: expected a string" in e for e in internal)
    assert any("empty array" in e for e in internal) and any("reasoning" in e for e in internal)
    assert not protocol_errors({"model": "m", "messages": _wire_messages(ep.messages)})
    assert _wire_messages([{"role": "assistant", "content": "", "reasoning": "r", "tool_calls": []}]) == [
        {"role": "assistant", "content": "", "reasoning_content": "r"}]


def test_non_finite_arguments_are_an_invalid_call_not_a_crash(fake, tools):
    """Python's json accepts NaN/Infinity: a call with them gets an error observation (it used to raise)."""
    fake.push(reply('<tool_call>{"name": "CaptionZoom", "arguments": {"interval": [NaN, 1]}}</tool_call>'),
              reply("", [openai_call("SpatialZoom", '{"time": Infinity, "box": [0, 0, 1, 1]}')]))
    fake.policy = good_teacher("A")
    ep = episode(fake, tools)
    assert ep.invalid_calls == 2 and ep.status == "answered"
    assert sum("must be finite" in str(m.get("content")) for m in ep.messages) == 2


def test_malformed_calls_get_an_error_observation_and_are_counted(fake, tools):
    fake.policy = malformed_then_answers("A")
    ep = episode(fake, tools)
    assert ep.status == "answered" and ep.answer == "A"
    assert ep.invalid_calls == 3
    errors = [m["content"] for m in ep.messages if str(m.get("content", "")).startswith("Error")]
    assert len(errors) == 3
    assert "not valid JSON" in errors[0]
    assert "unknown tool 'Teleport'" in errors[1]
    assert "start < end" in errors[2]
    # the teacher saw each error before its next turn
    assert "not valid JSON" in json.dumps(fake.requests[1]["body"]["messages"])
    assert dict(filter_episodes(QUESTION, [ep]).dropped) == {"invalid_tool_call": 1}


def test_429_with_retry_after_is_retried_and_honoured(fake, tools):
    fake.push(rate_limited(0.3), rate_limited(0.3))
    fake.policy = good_teacher("A")
    started = time.monotonic()
    ep = episode(fake, tools, max_retries=2)
    assert ep.status == "answered"
    assert fake.posts == 2 + 3  # two refusals, then the three turns
    assert time.monotonic() - started >= 0.55  # waited as the server asked (Retry-After: 0.3 twice)


def test_500s_are_retried_a_bounded_number_of_times(fake, tools):
    fake.policy = lambda body: status(500)
    started = time.monotonic()
    ep = episode(fake, tools, max_retries=2)
    assert ep.status == "backend_error" and ep.steps == 0
    assert fake.posts == 3  # 1 try + 2 retries, then the episode gives up
    assert time.monotonic() - started < 5
    assert dict(filter_episodes(QUESTION, [ep]).dropped) == {"backend_error": 1}


def test_a_transient_500_recovers(fake, tools):
    fake.push(status(500), status(503))
    fake.policy = good_teacher("A", "hermes")
    assert episode(fake, tools, max_retries=2).status == "answered"


def test_a_timeout_becomes_a_backend_error(fake, tools):
    fake.policy = lambda body: delay(10, reply("too late"))
    started = time.monotonic()
    ep = episode(fake, tools, timeout_s=0.3, max_retries=1)
    assert ep.status == "backend_error"
    assert fake.posts == 2
    assert time.monotonic() - started < 4


@pytest.mark.parametrize("fault", ["reset", "truncated_json", "short_body", "html", "empty_choices",
                                   "no_message", "huge_retry_after", "bad_request"])
def test_broken_responses_become_backend_errors_never_exceptions(fake, tools, fault):
    actions = {
        "reset": reset, "truncated_json": truncated_json, "short_body": short_body,
        "html": lambda: raw(b"<html><body>502 Bad Gateway</body></html>", "text/html"),
        "empty_choices": lambda: raw(json.dumps({"id": "x", "object": "chat.completion", "created": 0,
                                                 "model": "m", "choices": []}).encode()),
        "no_message": lambda: raw(json.dumps({"id": "x", "object": "chat.completion", "created": 0,
                                              "model": "m", "choices": [{"index": 0}]}).encode()),
        "huge_retry_after": lambda: rate_limited(10_000),  # longer than the client will wait: not retried
        "bad_request": lambda: status(400),
    }
    fake.policy = lambda body: actions[fault]()
    ep = episode(fake, tools, timeout_s=1.0, max_retries=1)
    assert ep.status == "backend_error"
    assert 1 <= fake.posts <= 2


def test_backend_error_message_names_the_backend(fake):
    fake.policy = lambda body: truncated_json()
    with pytest.raises(BackendError, match=r"openai:scripted-teacher: unreadable response body"):
        backend(fake).chat([{"role": "user", "content": "hi"}])


def test_a_reset_then_success_recovers(fake, tools):
    fake.push(reset())
    fake.policy = good_teacher("A")
    assert episode(fake, tools, max_retries=1).status == "answered"


def test_odd_but_valid_replies_are_normalised(fake):
    fake.push(raw(json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": [
        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": [
            {"type": "text", "text": "hello "}, {"type": "text", "text": "world"}],
            "tool_calls": [{"id": "a", "type": "function"}]}}]}).encode()))
    out = backend(fake).chat([{"role": "user", "content": "hi"}])
    assert out.content == "hello world"
    assert out.tool_calls == [{"function": {"name": None, "arguments": None}}]  # the parser counts it invalid


def test_a_model_that_never_calls_a_tool_is_stopped_by_the_budget(fake, tools):
    fake.policy = never_calls_a_tool
    ep = episode(fake, tools)
    assert fake.posts == MAX_STEPS + 1  # the steps, then one forced-answer turn
    assert ep.status == "no_answer" and ep.answer is None
    assert ep.invalid_calls == MAX_STEPS + 1
    assert fake.requests[-1]["body"]["messages"][-1]["content"].startswith("You have used all your steps")
    assert [t["function"]["name"] for t in fake.requests[-1]["body"]["tools"]] == ["Answer"]
    assert dict(filter_episodes(QUESTION, [ep]).dropped) == {"no_answer": 1}


def test_a_model_that_repeats_the_same_call_forever_is_stopped_by_the_budget(fake, tools):
    fake.policy = repeats_forever
    ep = episode(fake, tools)
    assert fake.posts == MAX_STEPS + 1
    assert ep.status == "no_answer"
    repeats = [m for m in ep.messages if "already called" in str(m.get("content", ""))]
    assert len(repeats) == MAX_STEPS - 1  # every call after the first
    assert ep.invalid_calls == MAX_STEPS  # the repeats + the forced turn without an answer
    assert dict(filter_episodes(QUESTION, [ep]).dropped) == {"no_answer": 1}


def test_the_filter_counts_each_fault_by_reason(fake, tools):
    runs = [(good_teacher("A"), {}), (good_teacher("A", "hermes"), {}), (good_teacher("B"), {}),
            (malformed_then_answers("A"), {}), (never_calls_a_tool, {}), (repeats_forever, {}),
            (lambda body: status(500), {"max_retries": 1}),
            (lambda body: delay(10), {"timeout_s": 0.3, "max_retries": 0})]
    episodes = []
    for policy, kw in runs:
        fake.policy = policy
        episodes.append(episode(fake, tools, **kw))
    result = filter_episodes(QUESTION, episodes)
    assert len(result.kept) == 1  # the Hermes run is the same trajectory as the OpenAI one
    assert dict(result.dropped) == {"duplicate": 1, "wrong_answer": 1, "invalid_tool_call": 1, "no_answer": 2,
                                    "backend_error": 2}


# ------------------------------------------------------------------------------------- the whole build

QUESTIONS = [
    ("good-openai", "cfr", "What is shown on screen?", good_teacher("A")),
    ("good-hermes-429", "vfr", "Which pattern do the frames show?", FirstTimeRateLimited(good_teacher("A", "hermes"))),
    ("wrong", "cfr", "What colour are the blocks?", good_teacher("C")),
    ("silent", "cfr", "Is there any text?", never_calls_a_tool),
    ("looping", "vfr", "How do the blocks change?", repeats_forever),
    ("malformed", "vfr", "What moves on screen?", malformed_then_answers("A")),
    ("rejected", "cfr", "How long is the video?", lambda body: status(400)),
    ("flaky", "vfr", "Who is speaking?", lambda body: status(500)),
    ("slow", "cfr", "Where is this filmed?", lambda body: delay(5)),
]


def test_a_build_with_an_openai_teacher_finishes_and_counts_every_fault(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(cfr_video().path, videos / "cfr.mp4")
    shutil.copy(vfr_video().path, videos / "vfr.mp4")
    items = [{"id": qid, "video": f"{v}.mp4", "question": text,
              "options": ["black and white blocks", "people", "a river", "a city"], "answer": "A"}
             for qid, v, text, _ in QUESTIONS]
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps(q) + "\n" for q in items))
    rate_limited_policy = QUESTIONS[1][3]
    with FakeOpenAIServer(route_by_question({text: policy for _, _, text, policy in QUESTIONS})) as srv:
        config = tmp_path / "build.yaml"
        config.write_text(f"samples_per_question: 2\nmax_steps: {MAX_STEPS}\nmax_pixels: 9216\n"
                          f"teacher: {{backend: openai, model: {srv.model}, base_url: '{srv.url}', "
                          "timeout_s: 0.5, max_retries: 1}\n")  # persistent faults fail fast
        app = typer.Typer()
        app.command()(build_command)
        out = tmp_path / "out"
        result = CliRunner().invoke(app, [
            "--videos", str(videos), "--questions", str(questions), "--out", str(out), "--preset", "tiny",
            "--config", str(config), "--workdir", str(tmp_path / "work"), "--no-progress"])
        posts = srv.posts
    assert result.exit_code == 0, result.output
    report = json.loads((out / "build_report.json").read_text())
    assert report["questions"] == len(QUESTIONS)
    assert report["episodes"] == 2 * len(QUESTIONS)
    assert report["kept"] == 2  # one per good question; its second sample is a duplicate
    assert report["dropped"] == {"backend_error": 6, "duplicate": 2, "invalid_tool_call": 2, "no_answer": 4,
                                 "wrong_answer": 2}
    assert report["kept"] + sum(report["dropped"].values()) == report["episodes"]
    assert report["invalid_tool_calls"] == 2 * 3 + 2 * (MAX_STEPS + 1) + 2 * MAX_STEPS
    assert rate_limited_policy.limited > 0  # 429s happened and were absorbed by retries
    assert posts < 200  # bounded: no retry storm
    assert "dropped 6 by backend_error" in result.output
    assert validate_path(out).ok


def test_config_teacher_points_at_the_server(tmp_path):
    from dataset_builder.config import load_config

    config = tmp_path / "b.yaml"
    config.write_text("teacher: {backend: openai, model: m, base_url: 'http://127.0.0.1:9/v1'}\n")
    cfg = load_config("tiny", Path(config))
    made = pipeline.make_backend(cfg.teacher)
    assert isinstance(made, OpenAIBackend) and str(made.client.base_url).startswith("http://127.0.0.1:9/v1")


def test_episodes_of_different_questions_reach_the_endpoint_concurrently(tmp_path):
    """With `workers: 3`, three questions' first teacher calls are in flight together (a barrier proves it)."""
    barrier = threading.Barrier(3, timeout=20)
    teacher = good_teacher("A")

    def policy(body):
        if step_of(body) == 0:
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                return status(500)  # fewer than 3 concurrent calls: the episodes fail and the test says so
        return teacher(body)

    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(cfr_video().path, videos / "cfr.mp4")
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps({"id": f"q{i}", "video": "cfr.mp4", "question": f"Question {i}?",
                                             "options": ["blocks", "people"], "answer": "A"}) + "\n"
                                 for i in range(3)))
    with FakeOpenAIServer(policy) as srv:
        config = tmp_path / "build.yaml"
        config.write_text(f"samples_per_question: 1\nworkers: 3\nmax_pixels: 9216\nteacher: {{backend: openai, "
                          f"model: {srv.model}, base_url: '{srv.url}', timeout_s: 30, max_retries: 0}}\n")
        app = typer.Typer()
        app.command()(build_command)
        result = CliRunner().invoke(app, [
            "--videos", str(videos), "--questions", str(questions), "--out", str(tmp_path / "out"), "--preset",
            "tiny", "--config", str(config), "--workdir", str(tmp_path / "work"), "--no-progress"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "build_report.json").read_text())
    assert "backend_error" not in report["dropped"] and report["kept"] == 3

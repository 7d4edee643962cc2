"""Fuzzing with hypothesis, extending tests/test_inputs.py and tests/test_validator.py (not repeating them).

- the tool-call parser: valid calls round-trip in both formats; arbitrary argument JSON never raises;
- the whole teacher loop under an arbitrary (adversarial) teacher never raises and respects its budget;
- subtitle parsers: SRT and WebVTT renderings of random cues parse back to the same cues;
- the loader stream (not just the validator) survives arbitrary and mutated shards in warn mode, and
  everything it yields is a valid record; frames.msg round-trips any list of binary frames.
"""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataset_builder.backends import ChatReply
from dataset_builder.episodes import run_episode
from dataset_builder.subtitles import SubtitleLine, in_interval, parse_subtitles
from dataset_builder.toolcall_parse import ParsedCall, parse_turn
from dataset_builder.tools import TOOLS_BY_NAME
from loaders.sample import Sample
from loaders.wds import Partition, ShardSampleStream
from tests.fixtures.records import make_samples
from tests.fixtures.videos import cfr_video
from tests.reliability_fixtures import QUESTION, make_tools, tar_bytes
from validation.record import TrajectoryRecord
from validation.shards import ShardFormatError, pack_frames, unpack_frames
from validation.tarstream import iter_tar_groups

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])
SAFE_TEXT = st.text(st.characters(blacklist_characters="<>", blacklist_categories=("Cs",)), max_size=30)
LEAF = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False) \
    | SAFE_TEXT
JSON = st.recursive(LEAF, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(SAFE_TEXT, inner, max_size=4),
                    max_leaves=12)
NAMES = st.sampled_from(sorted(TOOLS_BY_NAME)) | st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)


@FUZZ
@given(name=NAMES, args=st.dictionaries(SAFE_TEXT, JSON, max_size=5), thought=SAFE_TEXT, prose=SAFE_TEXT)
def test_valid_calls_round_trip_in_both_formats(name, args, thought, prose):
    hermes = parse_turn(f"<think>{thought}</think>{prose}<tool_call>{json.dumps({'name': name, 'arguments': args})}"
                        "</tool_call>")
    openai = parse_turn(prose, [{"function": {"name": name, "arguments": json.dumps(args)}}], reasoning=thought)
    for parsed in (hermes, openai):
        assert parsed.errors == []
        assert parsed.calls == [ParsedCall(name, args)]
        assert parsed.reasoning == thought.strip()
        assert parsed.text == prose.strip()


@FUZZ
@given(value=JSON | st.text(max_size=50), name=st.none() | st.text(max_size=10) | st.integers())
def test_arbitrary_arguments_never_raise(value, name):
    raw = value if isinstance(value, str) else json.dumps(value)
    for calls in ([{"function": {"name": name, "arguments": raw}}], [{"name": name, "arguments": value}], [value]):
        parsed = parse_turn(raw, calls)
        assert len(parsed.calls) + len(parsed.errors) >= 1 or calls == [value]
        assert all(isinstance(c.arguments, dict) and isinstance(c.name, str) and c.name for c in parsed.calls)


REPLY = st.builds(
    lambda content, calls: ChatReply(content=content, tool_calls=calls),
    st.one_of(
        st.text(max_size=80),
        st.builds(lambda n, a: f"<tool_call>{json.dumps({'name': n, 'arguments': a})}</tool_call>", NAMES, JSON),
        st.builds(lambda n, a: f"<tool_call>{{\"name\": \"{n}\", \"arguments\": {a}", NAMES, st.text(max_size=20)),
        st.sampled_from(['<tool_call>{"name": "CaptionZoom", "arguments": {"interval": [NaN, 1]}}</tool_call>',
                         '<tool_call>{"name": "SpatialZoom", "arguments": {"time": 1e999, "box": [0,0,1,1]}}'
                         '</tool_call>', '<tool_call>{"name": "Answer", "arguments": {"answer": "Z"}}</tool_call>']),
    ),
    st.lists(st.builds(lambda n, a: {"function": {"name": n, "arguments": a}}, NAMES | st.none(),
                       st.text(max_size=30) | JSON), max_size=2),
)


class _ScriptedTeacher:
    name = "fuzz-teacher"

    def __init__(self, replies: list[ChatReply]):
        self.replies = replies
        self.calls = 0

    def chat(self, messages, **kw) -> ChatReply:
        self.calls += 1
        return self.replies[(self.calls - 1) % len(self.replies)]


@pytest.fixture(scope="module")
def tools():
    video = cfr_video()
    return make_tools(video.path, video.duration_s)


@FUZZ
@given(replies=st.lists(REPLY, min_size=1, max_size=6))
def test_the_teacher_loop_survives_any_teacher(tools, replies):
    teacher = _ScriptedTeacher(replies)
    ep = run_episode(QUESTION, tools, teacher, sample=0, max_steps=3, temperature=0.0, seed=0)
    assert teacher.calls <= 4 and ep.steps <= 4
    assert ep.status in {"answered", "no_answer"}
    assert (ep.answer is not None) == (ep.status == "answered")
    json.dumps(ep.messages)  # the episode stays serializable (it is cached and written)


CUES = st.lists(st.tuples(st.integers(0, 36_000_000), st.integers(0, 600_000),
                          st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 ,.!?']{0,40}[A-Za-z0-9.!?]", fullmatch=True)),
                min_size=1, max_size=8)


def _stamp(ms: int, sep: str) -> str:
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}{sep}{ms % 1000:03d}"


@FUZZ
@given(cues=CUES)
def test_srt_and_vtt_round_trip(cues):
    expected = sorted([SubtitleLine(s / 1000, (s + d) / 1000, " ".join(t.split())) for s, d, t in cues],
                      key=lambda c: (c.start_s, c.end_s))
    srt = "\n\n".join(f"{i + 1}\n{_stamp(s, ',')} --> {_stamp(s + d, ',')}\n{t}" for i, (s, d, t) in enumerate(cues))
    vtt = "WEBVTT\n\n" + "\n\n".join(f"{_stamp(s, '.')} --> {_stamp(s + d, '.')}\n{t}" for s, d, t in cues)
    for text in (srt, vtt, srt.replace("\n", "\r\n")):
        parsed = parse_subtitles(text)
        assert [(round(p.start_s, 3), round(p.end_s, 3)) for p in parsed] == [(e.start_s, e.end_s) for e in expected]
        assert sorted(" ".join(p.text.split()) for p in parsed) == sorted(e.text for e in expected)


@FUZZ
@given(pieces=st.lists(st.sampled_from(["-->", "\n", "\n\n", "00:00:01,000", "99:99:99.999", "1:2:3.4", "<b>",
                                        "{\\an8}", "WEBVTT", "\ufeff", " "]) | st.text(max_size=10), max_size=30),
       start=st.floats(-1e6, 1e6), end=st.floats(-1e6, 1e6))
def test_cue_like_garbage_never_crashes(pieces, start, end):
    lines = parse_subtitles("".join(pieces))
    assert all(line.start_s <= line.end_s and line.text for line in lines)
    in_interval(lines, start, end)


GOOD_SHARD = tar_bytes([(f"{r.id}.json", r.to_json().encode()) if k == 0 else (f"{r.id}.frames.msg", pack_frames(f))
                        for r, f in make_samples(3) for k in (0, 1)])


def _stream(data: bytes, tmp_path) -> tuple[list[Sample], list[str]]:
    path = tmp_path / "fuzz.tar"
    path.write_bytes(data)
    stream = ShardSampleStream([str(path)], shuffle_shards=False, partition=Partition(), on_error="warn")
    return list(stream), stream.errors


@FUZZ
@given(edits=st.lists(st.tuples(st.integers(0, len(GOOD_SHARD) - 1), st.integers(0, 255)), min_size=1, max_size=8),
       cut=st.none() | st.integers(0, len(GOOD_SHARD)))
def test_the_loader_survives_mutated_shards(tmp_path, edits, cut):
    data = bytearray(GOOD_SHARD)
    for at, byte in edits:
        data[at] = byte
    samples, errors = _stream(bytes(data[:cut]), tmp_path)  # never raises in warn mode
    for sample in samples:
        assert isinstance(sample.record, TrajectoryRecord) and sample.record.id == sample.key
    assert len(samples) + len(errors) >= 1 or cut is not None and cut < 512


@FUZZ
@given(data=st.binary(max_size=2048))
def test_tar_groups_raise_only_shard_format_errors(data):
    try:
        for _ in iter_tar_groups(io.BytesIO(data), "fuzz.tar"):
            pass
    except ShardFormatError:
        pass


@FUZZ
@given(frames=st.lists(st.binary(max_size=64), max_size=20), junk=st.binary(max_size=64))
def test_frames_msg_round_trips_and_refuses_junk(frames, junk):
    assert unpack_frames(pack_frames(frames)) == frames
    try:
        out = unpack_frames(junk)
    except ShardFormatError:
        return
    assert isinstance(out, list) and all(isinstance(f, bytes) for f in out)


def test_fuzz_shard_fixture_is_valid(tmp_path):
    samples, errors = _stream(GOOD_SHARD, tmp_path)
    assert len(samples) == 3 and not errors
    with tarfile.open(fileobj=io.BytesIO(GOOD_SHARD)) as tar:
        assert len(tar.getnames()) == 6

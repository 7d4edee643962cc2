"""The validator passes a good dataset and names the check, shard and key of each planted defect.

One good dataset (several shards, two splits) is written once per module; each defect test copies it,
plants exactly one defect (re-tarring with ``tarfile`` and keeping index.json and _stats.json
consistent, so only the intended check fires) and checks that the rest of the dataset is still counted.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import msgpack  # noqa: E402
import pytest  # noqa: E402
import typer  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from dataset_builder.tools import CAPTION_ZOOM  # noqa: E402
from dataset_builder.writer import ShardWriter  # noqa: E402
from tests.fixtures.records import encode_jpeg, frame_image, make_samples  # noqa: E402
from validation.cli import validate_command  # noqa: E402
from validation.shards import pack_frames, sha256_file  # noqa: E402
from validation.validator import CHECKS, Problem, Report, validate_path  # noqa: E402

N_TRAIN, N_TEST = 12, 2
TOTAL = N_TRAIN + N_TEST
TARGET = "sample-00003"  # calls FrameZoom (msg 2), SubtitleRetrieval (msg 4), SpatialZoom (msg 6), Answer (8)
HYPOTHESIS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- the good dataset --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("good") / "dataset"
    with ShardWriter(folder, max_shard_bytes=250_000) as writer:
        for i, (record, frames) in enumerate(make_samples(TOTAL)):
            writer.write(record, frames, split="train" if i < N_TRAIN else "test")
    return folder


@pytest.fixture(scope="module")
def good_frames(good: Path) -> int:
    index = json.loads((good / "index.json").read_text())
    return sum(e["frames"] for entries in index["splits"].values() for e in entries)


@pytest.fixture
def bad(good: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(good, tmp_path / "bad"))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scratch")


# -- helpers: read, re-tar and keep index.json / _stats.json consistent ----------------------------


def shard_paths(folder: Path) -> list[str]:
    index = json.loads((folder / "index.json").read_text())
    return [e["path"] for entries in index["splits"].values() for e in entries]


def read_members(path: Path) -> list[tuple[str, bytes]]:
    with tarfile.open(path) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]


def shard_of(folder: Path, key: str) -> str:
    return next(rel for rel in shard_paths(folder) if f"{key}.json" in dict(read_members(folder / rel)))


def write_tar(path: Path, members: list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def rewrite(folder: Path, rel: str, members: list[tuple[str, bytes]]) -> None:
    """Re-tar a shard and update its index.json entry and _stats.json the way the writer would."""
    path = folder / rel
    write_tar(path, members)
    actual = {"bytes": path.stat().st_size, "sha256": sha256_file(path), **_counts(members)}
    index = json.loads((folder / "index.json").read_text())
    for entries in index["splits"].values():
        for entry in entries:
            if entry["path"] == rel:
                entry.update({k: v for k, v in actual.items() if k != "tool_calls"})
    (folder / "index.json").write_text(json.dumps(index))
    stats_path = path.with_name(path.name.removesuffix(".tar") + "_stats.json")
    stats_path.write_text(json.dumps({**json.loads(stats_path.read_text()), **actual}))


def _counts(members: list[tuple[str, bytes]]) -> dict[str, Any]:
    """Samples, frames and tool calls as the writer counts them (what can be parsed)."""
    counts: dict[str, Any] = {"samples": len({name.split(".")[0] for name, _ in members})}
    try:
        counts["frames"] = sum(len(msgpack.unpackb(d)) for n, d in members if n.endswith(".frames.msg"))
        tools = Counter(c["function"]["name"] for n, d in members if n.endswith(".json")
                        for m in json.loads(d)["messages"] for c in m.get("tool_calls") or [])
        counts["tool_calls"] = dict(sorted(tools.items()))
    except Exception:  # noqa: BLE001 - a planted defect may make a member unparsable
        pass
    return counts


def edit_member(folder: Path, key: str, ext: str, edit: Callable[[bytes], bytes]) -> str:
    rel = shard_of(folder, key)
    members = [(n, edit(d) if n == f"{key}.{ext}" else d) for n, d in read_members(folder / rel)]
    rewrite(folder, rel, members)
    return rel


def edit_record(folder: Path, key: str, edit: Callable[[dict], None]) -> str:
    def apply(data: bytes) -> bytes:
        record = json.loads(data)
        edit(record)
        return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()

    return edit_member(folder, key, "json", apply)


def edit_frames(folder: Path, key: str, edit: Callable[[list[bytes]], None]) -> str:
    def apply(data: bytes) -> bytes:
        frames = msgpack.unpackb(data)
        edit(frames)
        return pack_frames(frames)

    return edit_member(folder, key, "frames.msg", apply)


def assert_only(report: Report, check: str, shard: str, key: str | None, text: str = "") -> list[Problem]:
    """Every problem is ``check`` at ``shard``/``key``; one mentions ``text``; the other samples are valid."""
    assert report.problems, "the planted defect was not found"
    assert {(p.check, p.shard, p.key) for p in report.problems} == {(check, shard, key)}, report.summary()
    assert any(text in p.message for p in report.problems), report.summary()
    assert report.samples == TOTAL
    assert report.valid_samples == TOTAL - (key is not None)
    return report.problems


def checks(report: Report) -> set[str]:
    return {p.check for p in report.problems}


# -- the good dataset passes ---------------------------------------------------------------------------


def test_good_dataset_passes(good: Path, good_frames: int) -> None:
    report = validate_path(good)
    assert report.ok, report.summary()
    assert report.shards == len(shard_paths(good)) >= 3
    assert (report.samples, report.valid_samples, report.frames) == (TOTAL, TOTAL, good_frames)
    assert report.summary().startswith("OK")
    assert json.loads(report.to_json())["ok"] is True


def test_single_shard_and_folder_without_index_pass(bad: Path) -> None:
    rel = shard_paths(bad)[0]
    assert validate_path(bad / rel).ok
    (bad / "index.json").unlink()
    report = validate_path(bad)
    assert report.ok, report.summary()
    assert report.samples == TOTAL


def test_every_check_name_is_documented() -> None:
    assert set(CHECKS) >= {"index", "stats", "tar", "members", "keys", "json", "schema", "semantics",
                           "msgpack", "frames", "internal"}


# -- record: schema ----------------------------------------------------------------------------------


def test_schema_missing_field(bad: Path) -> None:
    rel = edit_record(bad, TARGET, lambda r: r.pop("question"))
    assert_only(validate_path(bad), "schema", rel, TARGET, "'question' is a required property")


def test_schema_wrong_type(bad: Path) -> None:
    rel = edit_record(bad, TARGET, lambda r: r["video"].update(duration_s="long"))
    problems = assert_only(validate_path(bad), "schema", rel, TARGET, "is not of type 'number'")
    assert any(p.message.startswith("/video/duration_s") for p in problems)


# -- record: semantics ---------------------------------------------------------------------------------


def test_unreferenced_frame(bad: Path) -> None:
    def drop_reference(record: dict) -> None:
        video = record["messages"][1]["content"][0]
        video["frames"].pop()
        video["timestamps"].pop()

    rel = edit_record(bad, TARGET, drop_reference)
    assert_only(validate_path(bad), "semantics", rel, TARGET, "is stored but no message references it")


def test_reference_to_missing_frame(bad: Path) -> None:
    image = {"type": "image", "frame": 999}
    rel = edit_record(bad, TARGET, lambda r: r["messages"][1]["content"].append(image))
    assert_only(validate_path(bad), "semantics", rel, TARGET, "references frame 999")


def test_negative_frame_reference(bad: Path) -> None:
    def negative(record: dict) -> None:
        video = record["messages"][1]["content"][0]
        video["frames"][0] = -1

    rel = edit_record(bad, TARGET, negative)
    assert_only(validate_path(bad), "semantics", rel, TARGET, "references frame -1")


def test_unknown_tool(bad: Path) -> None:
    def rename(record: dict) -> None:
        record["messages"][4]["tool_calls"][0]["function"]["name"] = "Teleport"
        record["messages"][5]["name"] = "Teleport"

    rel = edit_record(bad, TARGET, rename)
    assert_only(validate_path(bad), "semantics", rel, TARGET, "unknown tool 'Teleport'")


def test_invalid_tool_arguments(bad: Path) -> None:
    rel = edit_record(bad, TARGET, lambda r: r["messages"][4]["tool_calls"][0]["function"].update(
        arguments={"query": "speech", "top_k": "three"}))
    assert_only(validate_path(bad), "semantics", rel, TARGET, "SubtitleRetrieval top_k")


def test_tool_call_without_response(bad: Path) -> None:
    rel = edit_record(bad, TARGET, lambda r: r["messages"].pop(5))
    assert_only(validate_path(bad), "semantics", rel, TARGET, "(SubtitleRetrieval) has no tool response")


def test_timestamp_outside_video(bad: Path) -> None:
    def late(record: dict) -> None:
        record["messages"][6]["tool_calls"][0]["function"]["arguments"]["time"] = 5000.0

    rel = edit_record(bad, TARGET, late)
    assert_only(validate_path(bad), "semantics", rel, TARGET, "time 5000.0s is outside the video")


def test_unordered_interval(bad: Path) -> None:
    def swap(record: dict) -> None:
        arguments = record["messages"][2]["tool_calls"][0]["function"]["arguments"]
        arguments["interval"] = arguments["interval"][::-1]

    rel = edit_record(bad, TARGET, swap)
    assert_only(validate_path(bad), "semantics", rel, TARGET, "is not ordered")


def test_final_answer_not_among_options(bad: Path) -> None:
    rel = edit_record(bad, TARGET, lambda r: r["messages"][8]["tool_calls"][0]["function"].update(
        arguments={"answer": "Z"}))
    assert_only(validate_path(bad), "semantics", rel, TARGET, "the final answer 'Z' is not among the options")


def test_caption_text_in_grounded_frame_zoom_turn(bad: Path) -> None:
    caption = {"type": "text", "text": "A man walks a dog along the beach."}
    rel = edit_record(bad, TARGET, lambda r: r["messages"][3]["content"].append(caption))
    assert_only(validate_path(bad), "semantics", rel, TARGET, "grounded FrameZoom turn still holds text")


def test_caption_zoom_call_in_grounded_record(bad: Path) -> None:
    def caption_zoom(record: dict) -> None:
        record["tools"].append(CAPTION_ZOOM.openai())
        record["messages"][2]["tool_calls"][0]["function"]["name"] = "CaptionZoom"
        record["messages"][3]["name"] = "CaptionZoom"

    rel = edit_record(bad, TARGET, caption_zoom)
    assert_only(validate_path(bad), "semantics", rel, TARGET, "still calls the caption-space tool CaptionZoo")


def test_tool_spec_that_is_not_a_schema(bad: Path) -> None:
    def unresolvable(record: dict) -> None:
        spec = next(t for t in record["tools"] if t["function"]["name"] == "SubtitleRetrieval")
        spec["function"]["parameters"] = {"$ref": "https://example.invalid/schema.json"}  # never fetched

    rel = edit_record(bad, TARGET, unresolvable)
    assert_only(validate_path(bad), "semantics", rel, TARGET, "spec's parameters are not a valid")


# -- record: bytes ----------------------------------------------------------------------------------------


def test_non_utf8_json(bad: Path) -> None:
    rel = edit_member(bad, TARGET, "json", lambda data: data.replace(b'"question":"', b'"question":"\xff'))
    assert_only(validate_path(bad), "json", rel, TARGET, "not UTF-8")


def test_record_id_differs_from_key(bad: Path) -> None:
    rel = edit_record(bad, TARGET, lambda r: r.update(id="someone-else"))
    assert_only(validate_path(bad), "keys", rel, TARGET, "record id 'someone-else' differs from its key")


def test_non_canonical_floats(bad: Path) -> None:
    # 0.6 comes back from the datasets Json feature as 0.6000000000000001; the writer stores that
    rel = edit_record(bad, TARGET, lambda r: r["video"].update(fps=0.6))
    assert_only(validate_path(bad), "canonical", rel, TARGET, "not in canonical form")


# -- frames -----------------------------------------------------------------------------------------------


def test_invalid_msgpack(bad: Path) -> None:
    rel = edit_member(bad, TARGET, "frames.msg", lambda data: b"\xc1 not msgpack")
    assert_only(validate_path(bad), "msgpack", rel, TARGET, "not a valid msgpack list")


def test_msgpack_not_a_list_of_bytes(bad: Path) -> None:
    rel = edit_member(bad, TARGET, "frames.msg", lambda data: msgpack.packb({"frames": [1, 2]}))
    assert_only(validate_path(bad), "msgpack", rel, TARGET, "frames.msg")


def test_undecodable_frame(bad: Path) -> None:
    rel = edit_frames(bad, TARGET, lambda frames: frames.__setitem__(4, b"garbage, not a JPEG"))
    assert_only(validate_path(bad), "frames", rel, TARGET, "frame 4 is not a decodable JPEG or WebP image")


def test_frame_size_mismatch(bad: Path) -> None:
    small = encode_jpeg(frame_image(7, width=32, height=32))
    rel = edit_frames(bad, TARGET, lambda frames: frames.__setitem__(0, small))
    assert_only(validate_path(bad), "frames", rel, TARGET, "frame 0 is 32x32 but the record says 64x48")


# -- shards ------------------------------------------------------------------------------------------------


def test_truncated_tar(bad: Path) -> None:
    rel = shard_of(bad, TARGET)
    path = bad / rel
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2 + 100])
    report = validate_path(bad)
    tar = [p for p in report.problems if p.check == "tar"]
    assert len(tar) == 1 and tar[0].shard == rel, report.summary()
    assert checks(report) <= {"tar", "index", "stats"}
    assert {p.shard for p in report.problems} == {rel}
    in_shard = json.loads(path.with_name(path.name.replace(".tar", "_stats.json")).read_text())["samples"]
    assert TOTAL - in_shard <= report.samples < TOTAL


def test_non_adjacent_members(bad: Path) -> None:
    rel = next(r for r in shard_paths(bad) if len(read_members(bad / r)) >= 4)
    members = read_members(bad / rel)
    first_frames = members.pop(1)
    rewrite(bad, rel, [*members, first_frames])
    report = validate_path(bad)
    key = first_frames[0].split(".")[0]
    tar = [p for p in report.problems if p.check == "tar"]
    assert len(tar) == 1 and tar[0].shard == rel
    assert "non-adjacent" in tar[0].message and key in tar[0].message
    assert checks(report) == {"tar", "members"}
    assert report.samples == TOTAL


def test_duplicate_key_across_shards(bad: Path) -> None:
    first = shard_of(bad, "sample-00000")
    rel = next(r for r in shard_paths(bad) if r != first)
    members = read_members(bad / rel)
    old = members[0][0].split(".")[0]
    record = json.loads(members[0][1])
    record["id"] = "sample-00000"
    members[0] = ("sample-00000.json", json.dumps(record).encode())
    members[1] = ("sample-00000.frames.msg", members[1][1])
    rewrite(bad, rel, members)
    problems = assert_only(validate_path(bad), "keys", rel, "sample-00000", f"also used in {first}")
    assert old not in {p.key for p in problems}


def test_unexpected_member(bad: Path) -> None:
    rel = shard_paths(bad)[1]
    members = read_members(bad / rel)
    rewrite(bad, rel, [*members, ("x.pickle", b"cos\nsystem\n(S'echo owned'\ntR.")])
    report = validate_path(bad)
    assert {(p.check, p.shard, p.key) for p in report.problems} == {("members", rel, "x")}, report.summary()
    assert any("unexpected member(s) x.pickle" in p.message for p in report.problems)
    assert report.valid_samples == TOTAL


def test_path_traversal_member(bad: Path) -> None:
    rel = shard_paths(bad)[1]
    members = read_members(bad / rel)
    rewrite(bad, rel, [*members, ("../x.json", b"{}")])
    report = validate_path(bad)
    assert [(p.check, p.shard) for p in report.problems] == [("tar", rel)], report.summary()
    assert "holds a path" in report.problems[0].message
    assert report.samples >= TOTAL - 1  # the samples of the other shards are all counted
    assert not (bad.parent / "x.json").exists()


def test_oversized_member_declaration(bad: Path) -> None:
    rel = shard_paths(bad)[1]
    path = bad / rel
    header = tarfile.TarInfo("huge.frames.msg")
    header.size = 1 << 32
    path.write_bytes(header.tobuf(format=tarfile.USTAR_FORMAT) + b"\0" * 1024)
    report = validate_path(bad)
    assert any(p.check == "tar" and p.shard == rel and "declares" in p.message for p in report.problems)
    assert checks(report) <= {"tar", "index", "stats"}


def test_compressed_shard(bad: Path) -> None:
    import gzip

    rel = shard_paths(bad)[0]
    (bad / rel).write_bytes(gzip.compress((bad / rel).read_bytes()))
    report = validate_path(bad)
    assert any(p.check == "tar" and p.shard == rel and "gzip" in p.message for p in report.problems)


# -- index.json and _stats.json -------------------------------------------------------------------------


def test_sha256_mismatch_with_index(bad: Path) -> None:
    index = json.loads((bad / "index.json").read_text())
    entry = index["splits"]["train"][1]
    entry["sha256"] = "0" * 64
    (bad / "index.json").write_text(json.dumps(index))
    assert_only(validate_path(bad), "index", entry["path"], None, "sha256 in index.json is 0000")


def test_sample_count_mismatch_with_stats(bad: Path) -> None:
    rel = shard_paths(bad)[2]
    stats_path = bad / rel.replace(".tar", "_stats.json")
    stats = json.loads(stats_path.read_text())
    stats["samples"] += 1
    stats_path.write_text(json.dumps(stats))
    assert_only(validate_path(bad), "stats", rel, None, f"samples in {stats_path.name} is {stats['samples']}")


def test_missing_stats(bad: Path) -> None:
    rel = shard_paths(bad)[0]
    (bad / rel.replace(".tar", "_stats.json")).unlink()
    assert_only(validate_path(bad), "stats", rel, None, "is missing")


def test_missing_shard_listed_in_index(bad: Path) -> None:
    rel = shard_paths(bad)[1]
    in_shard = len(read_members(bad / rel)) // 2
    (bad / rel).unlink()
    report = validate_path(bad)
    assert [(p.check, p.shard) for p in report.problems] == [("index", rel)], report.summary()
    assert "does not exist" in report.problems[0].message
    assert report.samples == report.valid_samples == TOTAL - in_shard


def test_shard_not_in_index(bad: Path) -> None:
    shutil.copy(bad / shard_paths(bad)[0], bad / "data" / "train-000099.tar")
    report = validate_path(bad)
    unlisted = [p for p in report.problems if p.check == "index"]
    assert [p.shard for p in unlisted] == ["data/train-000099.tar"]
    assert "not listed" in unlisted[0].message
    assert checks(report) == {"index", "keys"}  # its samples repeat the keys of the shard it copies


def test_index_not_json(bad: Path) -> None:
    (bad / "index.json").write_bytes(os.urandom(256))
    report = validate_path(bad)
    assert [(p.check, p.shard) for p in report.problems] == [("index", None)], report.summary()
    assert report.samples == TOTAL  # the shards found on disk are still checked


def test_empty_folder_and_empty_index(tmp_path: Path) -> None:
    assert [p.check for p in validate_path(tmp_path).problems] == ["index"]
    (tmp_path / "index.json").write_text(json.dumps({"schema_version": "1.0", "splits": {}}))
    assert "lists no shards" in validate_path(tmp_path).summary()


def test_index_with_hostile_paths(bad: Path) -> None:
    index = json.loads((bad / "index.json").read_text())
    index["splits"]["train"][0]["path"] = "../../etc/passwd.tar"
    (bad / "index.json").write_text(json.dumps(index))
    report = validate_path(bad)
    assert ("index", "../../etc/passwd.tar") in {(p.check, p.shard) for p in report.problems}
    assert "not a relative .tar path" in report.summary()


# -- max_errors, report -----------------------------------------------------------------------------------


def test_max_errors_stops_early(bad: Path) -> None:
    for rel in shard_paths(bad):
        (bad / rel.replace(".tar", "_stats.json")).unlink()
    full = validate_path(bad)
    assert len(full.problems) == len(shard_paths(bad)) and not full.stopped_early
    limited = validate_path(bad, max_errors=2)
    assert len(limited.problems) == 2 and limited.stopped_early
    assert "stopped after 2 problem(s)" in limited.summary()
    data = json.loads(limited.to_json())
    assert data["problems_by_check"] == {"stats": 2} and data["stopped_early"] is True


def test_nonexistent_path_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        validate_path(tmp_path / "nope")


# -- CLI ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli() -> typer.Typer:
    app = typer.Typer()
    app.command()(validate_command)
    return app


def test_cli_good(cli: typer.Typer, good: Path) -> None:
    result = CliRunner().invoke(cli, [str(good)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("OK")


def test_registered_in_root_app(good: Path) -> None:
    from agent.cli import app as root_app

    result = CliRunner().invoke(root_app, ["validate", str(good), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["samples"] == TOTAL


def test_cli_bad_json(cli: typer.Typer, bad: Path) -> None:
    edit_record(bad, TARGET, lambda r: r.pop("question"))
    result = CliRunner().invoke(cli, [str(bad), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["problems_by_check"] == {"schema": 1}
    assert report["problems"][0]["key"] == TARGET


def test_cli_max_errors(cli: typer.Typer, bad: Path) -> None:
    (bad / "index.json").unlink()
    for rel in sorted((bad / "data").glob("*_stats.json")):
        rel.unlink()
    for name in ("a.tar", "b.tar"):
        (bad / name).write_bytes(b"not a tar at all" * 64)
    result = CliRunner().invoke(cli, [str(bad), "--max-errors", "1"])
    assert result.exit_code == 1
    assert "1 problem(s)" in result.stdout and "stopped after 1 problem(s)" in result.stdout


def test_cli_nonexistent_path(cli: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, [str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {tmp_path / 'nope'}: does not exist"
    assert "Traceback" not in result.output


def test_cli_random_bytes_never_crash(cli: typer.Typer, tmp_path: Path, good: Path) -> None:
    (tmp_path / "shard.tar").write_bytes(os.urandom(5000))
    result = CliRunner().invoke(cli, [str(tmp_path / "shard.tar")])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "[tar]" in result.stdout
    folder = Path(shutil.copytree(good, tmp_path / "copy"))
    (folder / "index.json").write_bytes(os.urandom(5000))
    result = CliRunner().invoke(cli, [str(folder), "--json"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert json.loads(result.stdout)["problems_by_check"] == {"index": 1}


# -- never crash: hypothesis -------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=25,
)
FRAME = encode_jpeg(frame_image(1))


def _validate_members(folder: Path, members: list[tuple[str, bytes]]) -> Report:
    write_tar(folder / "shard.tar", members)
    report = validate_path(folder / "shard.tar")
    assert "internal" not in checks(report), report.summary()
    return report


@HYPOTHESIS
@given(data=st.binary(max_size=3000))
def test_arbitrary_bytes_as_a_tar(scratch: Path, data: bytes) -> None:
    (scratch / "random.tar").write_bytes(data)
    report = validate_path(scratch / "random.tar")
    assert not report.ok and "internal" not in checks(report), report.summary()


@HYPOTHESIS
@given(value=JSON)
def test_arbitrary_json_as_a_record(scratch: Path, value: Any) -> None:
    members = [("k.json", json.dumps(value).encode()), ("k.frames.msg", pack_frames([FRAME]))]
    assert not _validate_members(scratch, members).ok


@HYPOTHESIS
@given(data=st.data())
def test_mutated_record_never_crashes(scratch: Path, data: st.DataObject) -> None:
    record, frames = make_samples(4)[data.draw(st.integers(0, 3))]
    tree = json.loads(record.to_json())
    node: Any = tree
    while isinstance(node, dict | list) and node and data.draw(st.booleans()):
        slot = data.draw(st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node))))
        if not isinstance(node[slot], dict | list) or data.draw(st.booleans()):
            node[slot] = data.draw(JSON)
            break
        node = node[slot]
    members = [(f"{record.id}.json", json.dumps(tree).encode()),
               (f"{record.id}.frames.msg", pack_frames(frames))]
    _validate_members(scratch, members)


@HYPOTHESIS
@given(edits=st.lists(st.tuples(st.integers(0, 1 << 30), st.integers(0, 255)), min_size=1, max_size=6),
       cut=st.none() | st.integers(0, 1 << 30))
def test_corrupted_shard_never_crashes(scratch: Path, good: Path, edits: list[tuple[int, int]],
                                       cut: int | None) -> None:
    data = bytearray((good / shard_paths(good)[0]).read_bytes())
    for position, value in edits:
        data[position % len(data)] = value
    if cut is not None:
        data = data[: cut % len(data)]
    (scratch / "corrupt.tar").write_bytes(bytes(data))
    report = validate_path(scratch / "corrupt.tar")
    assert "internal" not in checks(report), report.summary()

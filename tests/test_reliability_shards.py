"""Hostile and broken shards: the loaders never execute code, never write a file, keep memory bounded and
name the shard and key; `validate` reports each one.

Each case is a crafted .tar beside one good sample. The loader under test is the real one
(``loaders.wds`` over ``validation.tarstream``); memory is measured with tracemalloc around the read; the
test runs in an empty working directory and checks that nothing appeared anywhere under it.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import tracemalloc
from pathlib import Path

import pytest
import zstandard

from loaders.sample import Sample
from loaders.wds import Partition, ShardSampleStream
from tests.fixtures.records import make_samples
from tests.reliability_fixtures import huge_declared_member, tar_bytes
from validation.shards import ShardFormatError, pack_frames
from validation.validator import validate_path

MEMORY_LIMIT = 64 * 1024 * 1024  # far below every size the hostile members declare
GOOD_RECORD, GOOD_FRAMES = make_samples(1)[0]
GOOD = [(f"{GOOD_RECORD.id}.json", GOOD_RECORD.to_json().encode()),
        (f"{GOOD_RECORD.id}.frames.msg", pack_frames(GOOD_FRAMES))]


class _Payload:
    """Unpickling this creates ``marker``: proof that a loader executed code from a shard."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _zstd_bomb(n_bytes: int = 512 * 1024 * 1024) -> bytes:
    """A few hundred KB that decompress to ``n_bytes`` of zeros."""
    out = io.BytesIO()
    with zstandard.ZstdCompressor(level=19).stream_writer(out, closefd=False) as writer:
        chunk = bytes(16 * 1024 * 1024)
        for _ in range(n_bytes // len(chunk)):
            writer.write(chunk)
    return out.getvalue()


def _symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


def _case(name: str, marker: Path) -> tuple[bytes, str, str]:
    """(shard bytes, what the loader error must say, the validator check that must fire)."""
    evil = pickle.dumps(_Payload(marker))
    if name == "pickle_member":
        return tar_bytes([*GOOD, ("x.pickle", evil)]), "'x'", "members"
    if name == "pyd_member":
        return tar_bytes([*GOOD, ("x.json", GOOD[0][1].replace(GOOD_RECORD.id.encode(), b"x")),
                          ("x.frames.msg", GOOD[1][1]), ("x.pyd", evil)]), "'x'", "members"
    if name == "path_traversal":
        return tar_bytes([*GOOD, ("../x.json", b"{}")]), "../x.json", "tar"
    if name == "absolute_path":
        return tar_bytes([*GOOD, ("/tmp/x.json", b"{}")]), "/tmp/x.json", "tar"
    if name == "symlink":
        return tar_bytes([*GOOD, _symlink("x.json", "/etc/passwd")]), "x.json", "tar"
    if name == "declares_2GB":
        return tar_bytes(GOOD)[:-1024] + huge_declared_member("x.frames.msg"), "2147483648", "tar"
    if name == "msgpack_huge_list":
        return tar_bytes([*GOOD, ("x.json", b"{}"), ("x.frames.msg", b"\xdd\xff\xff\xff\xff")]), "'x'", "msgpack"
    if name == "msgpack_huge_bin":
        return tar_bytes([*GOOD, ("x.json", b"{}"), ("x.frames.msg", b"\x91\xc6\xff\xff\xff\xff")]), "'x'", "msgpack"
    if name == "zstd_member":
        return tar_bytes([*GOOD, ("x.json.zst", _zstd_bomb()), ("x.frames.msg", b"\x90")]), "'x'", "members"
    if name == "zstd_shard":
        return _zstd_bomb(64 * 1024 * 1024), "not a readable tar", "tar"
    if name == "non_utf8_json":
        return tar_bytes([*GOOD, ("x.json", b'{"id": "x", "t": "\xff\xfe"}'), ("x.frames.msg", b"\x90")]), \
            "not UTF-8", "json"
    if name == "duplicate_member":
        return tar_bytes([*GOOD, GOOD[0]]), f"{GOOD_RECORD.id!r} has member", "tar"
    if name == "non_adjacent":
        return tar_bytes([GOOD[0], ("x.json", b"{}"), GOOD[1]]), "non-adjacent", "tar"
    raise ValueError(name)


CASES = ["pickle_member", "pyd_member", "path_traversal", "absolute_path", "symlink", "declares_2GB",
         "msgpack_huge_list", "msgpack_huge_bin", "zstd_member", "zstd_shard", "non_utf8_json",
         "duplicate_member", "non_adjacent"]


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("case", CASES)
def test_hostile_shard_is_refused_safely(case, tmp_path, monkeypatch):
    marker = tmp_path / "PWNED"
    data, expected, check = _case(case, marker)
    shard = tmp_path / "data" / "train-000000.tar"
    shard.parent.mkdir()
    shard.write_bytes(data)
    del data
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    before = _tree(tmp_path)

    tracemalloc.start()
    try:
        stream = ShardSampleStream([str(shard)], shuffle_shards=False, partition=Partition(), on_error="warn")
        loaded = list(stream)
        with pytest.raises(ShardFormatError) as raised:
            list(ShardSampleStream([str(shard)], shuffle_shards=False, partition=Partition()))
        report = validate_path(shard)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert not marker.exists(), "a loader executed code from the shard"
    assert _tree(tmp_path) == before, "something was written while reading a shard"
    assert peak < MEMORY_LIMIT, f"{case}: peak {peak / 2**20:.0f} MiB while reading"
    assert str(shard) in str(raised.value)
    assert stream.errors and all(str(shard) in e for e in stream.errors)
    assert any(expected in e for e in stream.errors), stream.errors
    assert all(s.key == GOOD_RECORD.id for s in loaded), "only the good sample may come through"
    assert not report.ok
    assert check in report.problems_by_check, report.summary()
    assert all(p.shard == "train-000000.tar" for p in report.problems if p.check == check)


def test_a_good_sample_before_a_hostile_member_is_still_delivered(tmp_path):
    shard = tmp_path / "a.tar"
    shard.write_bytes(tar_bytes([*GOOD, ("../../escape.json", b"{}")]))
    stream = ShardSampleStream([str(shard)], shuffle_shards=False, partition=Partition(), on_error="warn")
    assert [s.key for s in stream] == [GOOD_RECORD.id]
    assert "escape.json" in stream.errors[0]


def test_duplicate_keys_across_shards_are_reported_by_validate(tmp_path):
    for i in range(2):
        (tmp_path / f"train-00000{i}.tar").write_bytes(tar_bytes(GOOD))
    report = validate_path(tmp_path)
    keys = [p for p in report.problems if p.check == "keys"]
    assert keys and keys[0].key == GOOD_RECORD.id and "also used in" in keys[0].message


def test_sample_from_members_never_unpickles(tmp_path):
    marker = tmp_path / "PWNED"
    members = {"json": GOOD[0][1], "frames.msg": GOOD[1][1], "pyd": pickle.dumps(_Payload(marker))}
    with pytest.raises(ShardFormatError, match="unexpected members"):
        Sample.from_members(GOOD_RECORD.id, members, shard="s.tar")
    frames_as_pickle = {"json": GOOD[0][1], "frames.msg": pickle.dumps(_Payload(marker))}
    with pytest.raises(ShardFormatError, match="frames.msg"):
        Sample.from_members(GOOD_RECORD.id, frames_as_pickle, shard="s.tar")
    assert not marker.exists()


def test_hf_loader_never_unpickles(tmp_path):
    """`datasets`' webdataset builder is also safe with a .pickle/.pyd member (its pickle decoders are off)."""
    from loaders import hf

    marker = tmp_path / "PWNED"
    shard = tmp_path / "x.tar"
    shard.write_bytes(tar_bytes([*GOOD, (f"{GOOD_RECORD.id}.pyd", pickle.dumps(_Payload(marker)))]))
    try:
        for _ in hf.load([str(shard)], streaming=True):
            pass
    except Exception:  # noqa: BLE001 - refusing the member is fine; executing it is not
        pass
    assert not marker.exists()
    assert os.listdir(tmp_path) == ["x.tar"]

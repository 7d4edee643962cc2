"""The dataset validator behind ``videothinker validate``: every check of the sample contract, one report.

``validate_path(path)`` accepts a dataset folder (with ``index.json``), a folder of ``.tar`` shards
without an index, or a single ``.tar`` shard. Each shard is streamed once (hashed while it is read);
each sample's record is checked against the JSON Schema, the ``TrajectoryRecord`` model and the
semantic rules, and each frame is decoded. Every finding is a ``Problem`` with a stable check name
(see ``CHECKS``); nothing a shard or a record holds makes the validator raise: an unexpected error
becomes an ``internal`` problem and the scan goes on with the next sample or shard.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

import jsonschema
from PIL import Image
from pydantic import ValidationError

from validation.record import SCHEMA_VERSION, TrajectoryRecord, canonical_floats
from validation.schema import load_schema
from validation.semantics import record_problems
from validation.shards import (
    DATA_DIR,
    FRAMES_MEMBER,
    INDEX_FILE,
    RECORD_MEMBER,
    SAMPLE_MEMBERS,
    STATS_SUFFIX,
    DatasetIndex,
    ShardEntry,
    ShardFormatError,
    load_json_bytes,
    unpack_frames,
)
from validation.tarstream import iter_tar_groups

CHECKS: dict[str, str] = {
    "index": "index.json is valid; listed shards exist; every tar is listed; sha256/bytes/counts agree",
    "stats": "each shard's _stats.json completion marker exists and agrees with the shard",
    "tar": "a readable, complete, uncompressed tar; adjacent members; flat names; bounded member sizes",
    "members": "each sample holds exactly {key}.json and {key}.frames.msg",
    "keys": "keys are unique across the dataset and equal the record's id",
    "json": "the record is UTF-8 JSON of bounded size and depth",
    "schema": "the record validates against the JSON Schema and the TrajectoryRecord model",
    "canonical": "floats are stored in canonical form (what the datasets Json feature returns)",
    "semantics": "frame references, tools and responses, times, intervals, answer and grounding agree",
    "msgpack": "frames.msg is a bounded msgpack list of binary frames",
    "frames": "every frame decodes as JPEG or WebP of bounded size, with the record's width and height",
    "internal": "an unexpected error while checking (a validator bug or an unforeseen input)",
}

FRAME_FORMATS = ("JPEG", "WEBP")
MAX_FRAME_PIXELS = 40_000_000  # above 8K UHD; a bigger "frame" is a decompression bomb, not video
MAX_INDEX_BYTES = 64 * 1024 * 1024
MAX_STATS_BYTES = 1024 * 1024
MAX_PROBLEMS_PER_RECORD = 10  # schema errors and bad frames of one sample, before "... and N more"
MAX_MESSAGE_CHARS = 300
COMPRESSED_MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd"}


@dataclass(frozen=True)
class Problem:
    """One finding: which check, where (shard path relative to the dataset, sample key) and what."""

    check: str
    shard: str | None
    key: str | None
    message: str

    def __str__(self) -> str:
        where = " ".join(w for w in (self.shard, self.key) if w)
        return f"[{self.check}] {where + ': ' if where else ''}{self.message}"


@dataclass
class Report:
    """What a validation run saw and found; ``ok`` when nothing was found."""

    path: str
    shards: int = 0
    samples: int = 0
    valid_samples: int = 0
    frames: int = 0
    problems: list[Problem] = field(default_factory=list)
    max_errors: int | None = None
    stopped_early: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def problems_by_check(self) -> dict[str, int]:
        return dict(sorted(Counter(p.check for p in self.problems).items()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "ok": self.ok, "shards": self.shards, "samples": self.samples,
            "valid_samples": self.valid_samples, "frames": self.frames,
            "problems_by_check": self.problems_by_check, "max_errors": self.max_errors,
            "stopped_early": self.stopped_early, "problems": [asdict(p) for p in self.problems],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def summary(self, limit: int = 20) -> str:
        """Human text: a verdict line, counts by check and the first ``limit`` problems."""
        counts = (f"{self.shards} shard(s), {self.samples} sample(s) ({self.valid_samples} valid), "
                  f"{self.frames} frame(s)")
        if self.ok:
            return f"OK {self.path}: {counts}; no problems"
        lines = [f"FAILED {self.path}: {counts}; {len(self.problems)} problem(s)",
                 "by check: " + ", ".join(f"{c} {n}" for c, n in self.problems_by_check.items())]
        lines += [f"  {p}" for p in self.problems[:limit]]
        if len(self.problems) > limit:
            lines.append(f"  ... and {len(self.problems) - limit} more (use --json for all)")
        if self.stopped_early:
            lines.append(f"stopped after {self.max_errors} problem(s) (--max-errors); counts are partial")
        return "\n".join(lines)


def validate_path(path: Path | str, max_errors: int | None = None) -> Report:
    """Validate a dataset folder, a folder of shards or one shard; raise only if PATH does not exist."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: does not exist")
    if max_errors is not None and max_errors < 1:
        raise ValueError("max_errors must be at least 1")
    report = Report(path=str(path), max_errors=max_errors)
    scanner = _Scanner(report)
    try:
        scanner.guarded(None, None, lambda: scanner.scan(path))
    except _StopScan:
        report.stopped_early = True
    return report


class _StopScan(Exception):
    """Raised when ``max_errors`` problems are collected; never escapes ``validate_path``."""


@dataclass
class _ShardResult:
    samples: int = 0
    frames: int = 0
    stream_complete: bool = True  # the tar was read to its end without a format error
    frames_known: bool = True  # every sample's frames.msg was decoded
    tools_known: bool = True  # every sample's record was parsed
    tool_calls: Counter = field(default_factory=Counter)
    sha256: str = ""
    nbytes: int = 0


class _HashingReader:
    """A read-only stream that hashes and counts what passes through it."""

    def __init__(self, fh: IO[bytes]):
        self.fh = fh
        self.digest = hashlib.sha256()
        self.nbytes = 0

    def read(self, size: int = -1) -> bytes:
        data = self.fh.read(size)
        self.digest.update(data)
        self.nbytes += len(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


class _Scanner:
    def __init__(self, report: Report):
        self.report = report
        self.keys: dict[str, str] = {}  # key -> shard where it was first seen

    # -- bookkeeping -------------------------------------------------------------------------------

    def add(self, check: str, message: str, shard: str | None = None, key: str | None = None) -> None:
        self.report.problems.append(Problem(check, shard, key, _clip(message)))
        limit = self.report.max_errors
        if limit is not None and len(self.report.problems) >= limit:
            raise _StopScan

    def guarded(self, shard: str | None, key: str | None, work: Callable[[], Any]) -> Any:
        """Run ``work``; an unexpected exception becomes an ``internal`` problem instead of a traceback."""
        try:
            return work()
        except _StopScan:
            raise
        except Exception as exc:  # noqa: BLE001 - the validator must survive anything
            self.add("internal", f"unexpected {type(exc).__name__}: {exc}", shard, key)
            return None

    # -- folders -----------------------------------------------------------------------------------

    def scan(self, path: Path) -> None:
        if path.is_dir():
            self.scan_folder(path)
        else:
            self.guarded(path.name, None, lambda: self.scan_shard(path, path.name, None, None))

    def scan_folder(self, folder: Path) -> None:
        has_index = (folder / INDEX_FILE).exists()
        index = self.load_index(folder) if has_index else None
        tars = _find_tars(folder)
        listed: set[str] = set()
        for split, entry in _entries(index):
            self.guarded(entry.path, None, lambda s=split, e=entry: self.scan_entry(folder, s, e, listed))
        for rel in sorted(set(tars) - listed):
            if index is not None:
                self.add("index", f"not listed in {INDEX_FILE} (a stale or foreign shard?)", rel)
            self.guarded(rel, None, lambda r=rel: self.scan_shard(tars[r], r, None, None))
        if index is not None and not _entries(index):
            self.add("index", f"{INDEX_FILE} lists no shards")
        if not tars and not has_index:
            self.add("index", f"no {INDEX_FILE} and no .tar shards under {folder}")

    def load_index(self, folder: Path) -> DatasetIndex | None:
        path = folder / INDEX_FILE
        try:
            if path.stat().st_size > MAX_INDEX_BYTES:
                self.add("index", f"{INDEX_FILE} is over {MAX_INDEX_BYTES} bytes")
                return None
            data = json.loads(path.read_bytes().decode("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            self.add("index", f"{INDEX_FILE} is not readable UTF-8 JSON ({type(exc).__name__}: {exc})")
            return None
        try:
            index = DatasetIndex.model_validate(data)
        except ValidationError as exc:
            self.add("index", f"{INDEX_FILE} does not have the DatasetIndex layout: {_pydantic_text(exc)}")
            return None
        if index.schema_version != SCHEMA_VERSION:
            self.add("index", f"{INDEX_FILE} declares schema_version {index.schema_version!r}; "
                              f"this validator checks {SCHEMA_VERSION!r}")
        return index

    def scan_entry(self, folder: Path, split: str, entry: ShardEntry, listed: set[str]) -> None:
        rel = entry.path
        if not _safe_rel(rel):
            self.add("index", f"shard path {rel!r} is not a relative .tar path inside the dataset", rel)
            return
        if rel in listed:
            self.add("index", f"listed twice in {INDEX_FILE}", rel)
            return
        listed.add(rel)
        if not rel.startswith(f"{DATA_DIR}/{split}-"):
            self.add("index", f"listed under split {split!r} but not named {DATA_DIR}/{split}-*.tar "
                              "(the README's data_files glob would put it elsewhere)", rel)
        path = folder / rel
        if not path.is_file():
            self.add("index", f"listed in {INDEX_FILE} but does not exist; re-download or rebuild", rel)
            return
        self.scan_shard(path, rel, entry, split)

    # -- shards ------------------------------------------------------------------------------------

    def scan_shard(self, path: Path, rel: str, entry: ShardEntry | None, split: str | None) -> None:
        self.report.shards += 1
        result = self.read_shard(path, rel)
        if entry is not None:
            self.compare(rel, "index", INDEX_FILE, entry, result)
        self.check_stats(path, rel, split, result, required=entry is not None)

    def read_shard(self, path: Path, rel: str) -> _ShardResult:
        result = _ShardResult()
        with open(path, "rb") as fh:
            reader = _HashingReader(fh)
            compression = _compression(fh)
            if compression:
                result.stream_complete = False
                self.add("tar", f"shard is {compression}-compressed; the contract requires a plain .tar", rel)
            else:
                self.read_members(reader, rel, result)
            reader.drain()
        result.sha256, result.nbytes = reader.digest.hexdigest(), reader.nbytes
        if result.stream_complete and not result.samples:
            self.add("tar", "shard holds no samples", rel)
        return result

    def read_members(self, reader: _HashingReader, rel: str, result: _ShardResult) -> None:
        try:
            for key, members in iter_tar_groups(reader, rel):  # type: ignore[arg-type]
                self.guarded(rel, key, lambda k=key, m=members: self.check_sample(rel, k, m, result))
        except ShardFormatError as exc:
            result.stream_complete = False
            self.add("tar", str(exc).removeprefix(f"{rel}: "), rel)
        except _StopScan:
            raise
        except Exception as exc:  # noqa: BLE001 - tarfile may raise more than TarError on hostile bytes
            result.stream_complete = False
            self.add("internal", f"reading the tar raised {type(exc).__name__}: {exc}", rel)

    def compare(self, rel: str, check: str, source: str, expected: ShardEntry, result: _ShardResult) -> None:
        actual = {"sha256": result.sha256, "bytes": result.nbytes}
        if result.stream_complete:
            actual["samples"] = result.samples
            if result.frames_known:
                actual["frames"] = result.frames
        for name, value in actual.items():
            if (declared := getattr(expected, name)) != value:
                self.add(check, f"{name} in {source} is {declared} but the shard has {value}", rel)

    def check_stats(self, path: Path, rel: str, split: str | None, result: _ShardResult,
                    required: bool) -> None:
        stats_path = path.with_name(path.name.removesuffix(".tar") + STATS_SUFFIX)
        source = stats_path.name
        if not stats_path.is_file():
            if required:
                self.add("stats", f"{source} is missing (the shard was never completed?)", rel)
            return
        stats = self.load_stats(stats_path, rel)
        if stats is None:
            return
        entry = self.stats_entry(stats, rel, source)
        if entry is None:
            return
        self.compare(rel, "stats", source, entry, result)
        if PurePosixPath(entry.path).name != path.name:
            self.add("stats", f"{source} describes {entry.path!r}, not {path.name}", rel)
        if split is not None and stats.get("split", split) != split:
            self.add("stats", f"{source} says split {stats.get('split')!r}; {INDEX_FILE} says {split!r}", rel)
        tools, actual = stats.get("tool_calls"), dict(result.tool_calls)
        if result.stream_complete and result.tools_known and isinstance(tools, dict) and tools != actual:
            self.add("stats", f"tool_calls in {source} is {tools} but the records call {actual}", rel)

    def load_stats(self, stats_path: Path, rel: str) -> dict[str, Any] | None:
        try:
            if stats_path.stat().st_size > MAX_STATS_BYTES:
                raise ValueError(f"over {MAX_STATS_BYTES} bytes")
            stats = json.loads(stats_path.read_bytes().decode("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            self.add("stats", f"{stats_path.name} is not UTF-8 JSON ({type(exc).__name__}: {exc})", rel)
            return None
        if not isinstance(stats, dict):
            self.add("stats", f"{stats_path.name} is not a JSON object", rel)
            return None
        return stats

    def stats_entry(self, stats: dict[str, Any], rel: str, source: str) -> ShardEntry | None:
        try:
            return ShardEntry.model_validate(stats)
        except ValidationError as exc:
            self.add("stats", f"{source} lacks the shard fields: {_pydantic_text(exc)}", rel)
            return None

    # -- samples -----------------------------------------------------------------------------------

    def check_sample(self, rel: str, key: str, members: dict[str, bytes], result: _ShardResult) -> None:
        before = len(self.report.problems)
        self.report.samples += 1
        result.samples += 1
        self.check_key(rel, key)
        self.check_members(rel, key, members)
        frames = self.check_msgpack(rel, key, members.get(FRAMES_MEMBER))
        record = self.check_record(rel, key, members.get(RECORD_MEMBER), frames)
        if frames is None:
            result.frames_known = False
        else:
            result.frames += len(frames)
            self.report.frames += len(frames)
            self.check_frames(rel, key, frames, record)
        if record is None:
            result.tools_known = False
        else:
            result.tool_calls.update(c.function.name for c in record.tool_calls())
        if len(self.report.problems) == before:
            self.report.valid_samples += 1

    def check_key(self, rel: str, key: str) -> None:
        first = self.keys.setdefault(key, rel)
        if first != rel:
            self.add("keys", f"key {key!r} is also used in {first}; keys must be unique across the dataset",
                     rel, key)

    def check_members(self, rel: str, key: str, members: dict[str, bytes]) -> None:
        extra = sorted(set(members) - set(SAMPLE_MEMBERS))
        if extra:
            names = ", ".join(f"{key}.{ext}" for ext in extra)
            self.add("members", f"unexpected member(s) {names}; a sample holds only .json and .frames.msg",
                     rel, key)
        missing = [ext for ext in SAMPLE_MEMBERS if ext not in members]
        if missing:
            self.add("members", f"sample lacks {', '.join(f'{key}.{ext}' for ext in missing)}", rel, key)

    def check_msgpack(self, rel: str, key: str, data: bytes | None) -> list[bytes] | None:
        if data is None:
            return None
        try:
            return unpack_frames(data, where=f"{key}.{FRAMES_MEMBER}")
        except ShardFormatError as exc:
            self.add("msgpack", str(exc), rel, key)
            return None

    def check_record(self, rel: str, key: str, data: bytes | None, frames: list[bytes] | None
                     ) -> TrajectoryRecord | None:
        if data is None:
            return None
        try:
            obj = load_json_bytes(data, where=f"{key}.{RECORD_MEMBER}")
        except ShardFormatError as exc:
            self.add("json", str(exc), rel, key)
            return None
        except RecursionError:
            self.add("json", f"{key}.{RECORD_MEMBER} nests too deeply", rel, key)
            return None
        record_id = obj.get("id") if isinstance(obj, dict) else None
        if isinstance(record_id, str) and record_id != key:
            self.add("keys", f"record id {record_id!r} differs from its key {key!r}", rel, key)
        record = self.check_schema(rel, key, obj)
        if record is None:
            return None
        self.check_canonical(rel, key, obj)
        for message in record_problems(record, n_frames=None if frames is None else len(frames)):
            self.add("semantics", message, rel, key)
        return record

    def check_schema(self, rel: str, key: str, obj: Any) -> TrajectoryRecord | None:
        errors = list(itertools.islice(_schema_validator().iter_errors(obj), MAX_PROBLEMS_PER_RECORD + 1))
        for error in errors[:MAX_PROBLEMS_PER_RECORD]:
            self.add("schema", _schema_error_text(error), rel, key)
        if len(errors) > MAX_PROBLEMS_PER_RECORD:
            self.add("schema", f"... more schema errors (first {MAX_PROBLEMS_PER_RECORD} shown)", rel, key)
        if errors:
            return None
        try:
            return TrajectoryRecord.model_validate(obj)
        except ValidationError as exc:
            self.add("schema", f"TrajectoryRecord: {_pydantic_text(exc)}", rel, key)
            return None

    def check_canonical(self, rel: str, key: str, obj: Any) -> None:
        try:
            canonical = canonical_floats(obj) == obj
        except RecursionError:
            self.add("json", f"{key}.{RECORD_MEMBER} nests too deeply", rel, key)
            return
        if not canonical:
            self.add("canonical", "floats are not in canonical form (load_dataset would return other "
                                  "values); rewrite the record with TrajectoryRecord.to_json()", rel, key)

    def check_frames(self, rel: str, key: str, frames: list[bytes], record: TrajectoryRecord | None) -> None:
        infos = record.frames if record is not None else []
        found = 0
        for i, data in enumerate(frames):
            message = _frame_problem(i, data, (infos[i].width, infos[i].height) if i < len(infos) else None)
            if message is None:
                continue
            found += 1
            if found <= MAX_PROBLEMS_PER_RECORD:
                self.add("frames", message, rel, key)
        if found > MAX_PROBLEMS_PER_RECORD:
            self.add("frames", f"... {found} bad frames (first {MAX_PROBLEMS_PER_RECORD} shown)", rel, key)


# -- helpers ---------------------------------------------------------------------------------------


_SCHEMA_VALIDATOR: list[jsonschema.Draft202012Validator] = []


def _schema_validator() -> jsonschema.Draft202012Validator:
    if not _SCHEMA_VALIDATOR:
        _SCHEMA_VALIDATOR.append(jsonschema.Draft202012Validator(load_schema()))
    return _SCHEMA_VALIDATOR[0]


def _frame_problem(i: int, data: bytes, size: tuple[int, int] | None) -> str | None:
    """Why frame ``i`` is bad, or None: it must decode and match the record's (width, height)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FRAME_FORMATS) as image:
                width, height = image.size
                if width * height > MAX_FRAME_PIXELS:
                    return f"frame {i} declares {width}x{height} pixels, over the {MAX_FRAME_PIXELS} limit"
                image.load()
    except Exception as exc:  # noqa: BLE001 - PIL raises many types on corrupt data
        return f"frame {i} is not a decodable JPEG or WebP image ({type(exc).__name__}: {exc})"
    if size is not None and (width, height) != size:
        return f"frame {i} is {width}x{height} but the record says {size[0]}x{size[1]}"
    return None


def _schema_error_text(error: jsonschema.ValidationError) -> str:
    text = f"{_pointer(error.absolute_path)}: {_clip(error.message, 150)}"
    if error.context:
        detail = jsonschema.exceptions.best_match(error.context)
        if detail is not None:
            text += f" (best match: {_pointer(detail.absolute_path)}: {_clip(detail.message, 120)})"
    return text


def _pointer(parts: Iterable[Any]) -> str:
    return "/" + "/".join(str(p) for p in parts)


def _pydantic_text(exc: ValidationError, limit: int = 3) -> str:
    errors = exc.errors(include_url=False)
    shown = "; ".join(f"{_pointer(e['loc'])}: {e['msg']}" for e in errors[:limit])
    return shown + (f" (and {len(errors) - limit} more)" if len(errors) > limit else "")


def _clip(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _compression(fh: IO[bytes]) -> str | None:
    head = fh.read(6)
    fh.seek(0)
    return next((name for magic, name in COMPRESSED_MAGIC.items() if head.startswith(magic)), None)


def _find_tars(folder: Path) -> dict[str, Path]:
    """Every ``*.tar`` file under ``folder`` (relative POSIX path -> path), skipping hidden folders."""
    found = {}
    for path in folder.rglob("*.tar"):
        rel = path.relative_to(folder)
        if path.is_file() and not any(part.startswith(".") for part in rel.parts):
            found[rel.as_posix()] = path
    return found


def _entries(index: DatasetIndex | None) -> list[tuple[str, ShardEntry]]:
    return [(split, e) for split, entries in (index.splits if index else {}).items() for e in entries]


def _safe_rel(rel: str) -> bool:
    path = PurePosixPath(rel)
    return (bool(rel) and "\\" not in rel and not path.is_absolute() and ".." not in path.parts
            and rel.endswith(".tar") and not any(p.startswith(".") for p in path.parts))

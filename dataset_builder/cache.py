"""A content-addressed cache for model calls and stage outputs: SQLite rows, zstd-compressed JSON values.

The key hashes everything that determines the result (model, messages, images' hashes, parameters,
seed), so a killed build resumes without repeating work and a changed input is never served stale.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zstandard

# Test-only fault injection for the crash-safety suite (tests/test_reliability_crash.py), off by default:
# VIDEOTHINKER_KILL_AT="EVENT:N" makes the process SIGKILL itself right after the N-th EVENT, where EVENT is
# cache_put (a cache row committed), shard_member (a tar member written to a temporary shard),
# shard_renamed (a finished shard moved to its final name) or before_index (all shards final, index.json
# not yet saved).
_KILL_AT = os.environ.get("VIDEOTHINKER_KILL_AT", "")
_events: Counter = Counter()


def crash_point(event: str) -> None:
    if not _KILL_AT:
        return
    _events[event] += 1
    name, _, n = _KILL_AT.partition(":")
    if name == event and _events[event] == int(n):
        os.kill(os.getpid(), signal.SIGKILL)


def content_key(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=_default).encode()
    return hashlib.sha256(blob).hexdigest()


def _default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return "sha256:" + hashlib.sha256(value).hexdigest()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot hash {type(value).__name__} into a cache key")


class Cache:
    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._conn() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
        self.hits = 0
        self.misses = 0

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            self._local.conn = conn
        return conn

    def get(self, key: str) -> Any | None:
        row = self._conn().execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return json.loads(zstandard.ZstdDecompressor().decompress(row[0]))

    def put(self, key: str, value: Any) -> None:
        blob = zstandard.ZstdCompressor(level=3).compress(json.dumps(value, ensure_ascii=False).encode())
        self._conn().execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, blob))
        crash_point("cache_put")

    def get_or_compute(self, key: str, compute: Callable[[], Any]) -> Any:
        value = self.get(key)
        if value is not None:
            self.hits += 1
            return value
        self.misses += 1
        value = compute()
        self.put(key, value)
        return value

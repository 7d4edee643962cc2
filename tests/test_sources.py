"""Shards from a URL list and over HTTP (a local server) read the same as from the folder."""

from __future__ import annotations

import functools
import http.server
import threading

import pytest

from loaders import wds
from loaders.sources import SourceError, resolve
from validation.shards import DatasetIndex


@pytest.fixture(scope="module")
def http_dataset(written_dataset):
    folder, expected = written_dataset
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", folder, expected
    server.shutdown()


def test_http_urls_stream_every_sample(http_dataset):
    base, folder, expected = http_dataset
    urls = [f"{base}/{e.path}" for e in DatasetIndex.load(folder).splits["train"]]
    samples = list(wds.samples(urls))
    assert [(s.record, s.frames) for s in samples] == expected


def test_url_list_file(http_dataset, tmp_path):
    base, folder, expected = http_dataset
    listing = tmp_path / "shards.txt"
    shards = DatasetIndex.load(folder).splits["train"]
    listing.write_text("# train shards\n" + "".join(f"{base}/{e.path}\n" for e in shards))
    assert [s.key for s in wds.samples(listing)] == [r.id for r, _ in expected]


def test_unknown_split_and_bad_source_say_what_to_pass(written_dataset, tmp_path):
    folder, _ = written_dataset
    with pytest.raises(SourceError, match="no split 'validation'.*splits: train"):
        resolve(folder, "validation")
    with pytest.raises(SourceError, match="not a dataset folder"):
        resolve(tmp_path / "missing" / "thing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no index.json"):
        resolve(tmp_path / "empty")

"""The trajectory viewer: a self-contained page (no URL; frames as data: URIs) showing every turn, every
tool call and every frame with its timestamp, and the final answer against the gold one.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json
import re

import pytest
import typer
from typer.testing import CliRunner

from cards.cli import view_command
from cards.viewer import ViewerError, fmt_time, frame_mime, render_html, render_samples
from loaders.wds import Partition, samples
from validation.record import ImagePart, TextPart, VideoPart


@pytest.fixture(scope="module")
def dataset(written_dataset):
    folder = written_dataset[0]
    return folder, list(samples(folder, "train", partition=Partition()))


def _sections(page: str) -> dict[str, str]:
    parts = re.split(r'(?=<section class="sample" id="s-)', page)
    return {re.match(r'<section class="sample" id="s-([^"]+)"', p).group(1): p for p in parts[1:]}


def test_page_is_self_contained(dataset):
    folder, _ = dataset
    page = render_html(folder, n=5)
    assert "http://" not in page and "https://" not in page and "//" not in re.sub(r"data:[^\"]+", "", page)
    for src in re.findall(r'\bsrc="([^"]*)"', page):
        assert src.startswith(("data:image/jpeg;base64,", "data:image/webp;base64,"))
    assert all(href.startswith("#") for href in re.findall(r'\bhref="([^"]*)"', page))
    assert "<link" not in page and "<script" not in page and "@import" not in page and "url(" not in page


def test_every_turn_and_frame_is_shown(dataset):
    folder, all_samples = dataset
    shown = all_samples[:5]
    page = render_html(folder, n=5)
    assert page.count("<img") == sum(len(s.frames) for s in shown)
    sections = _sections(page)
    assert list(sections) == [s.key for s in shown]
    for sample in shown:
        section, record = sections[sample.key], sample.record
        assert section.count('<div class="turn ') == len(record.messages)
        assert html.escape(record.question) in section
        assert all(html.escape(o) in section for o in record.options)
        for message in record.messages:
            if message.reasoning:
                assert html.escape(message.reasoning) in section
            for part in message.content:
                if isinstance(part, TextPart):
                    assert html.escape(part.text) in section
                elif isinstance(part, VideoPart):
                    for f, t in zip(part.frames, part.timestamps, strict=True):
                        assert f"#{f} @ {fmt_time(t)}" in section
                elif isinstance(part, ImagePart):
                    assert f"#{part.frame} @ {fmt_time(record.frames[part.frame].timestamp_s)}" in section
            for call in message.tool_calls or []:
                args = html.escape(json.dumps(_as_written(call.function.arguments), ensure_ascii=False))
                assert f"<b>{call.function.name}</b>({args})" in section
        srcs = re.findall(r'<img src="data:[^;]+;base64,([^"]+)"', section)
        assert sorted(base64.b64decode(s) for s in srcs) == sorted(sample.frames)  # every frame, exact bytes
        assert "✓ correct" in section


def test_keys_select_in_order_and_late_fields_show(dataset):
    folder, all_samples = dataset
    page = render_html(folder, keys=["sample-00007", "sample-00003"])
    assert list(_sections(page)) == ["sample-00007", "sample-00003"]
    assert "thinking: Step 0: I should look." in page and "crop [10, 10, 40, 30]" in page
    by_key = {s.key: s for s in all_samples}
    assert page.count("<img") == len(by_key["sample-00007"].frames) + len(by_key["sample-00003"].frames)


def test_wrong_answer_is_marked(dataset):
    _, all_samples = dataset
    given = all_samples[2].record.answer  # the fixture's Answer call gives the gold letter
    record = all_samples[2].record.model_copy(update={"answer": "A" if given != "A" else "B"})
    sample = dataclasses.replace(all_samples[2], record=record)
    page = render_samples([("train", sample)], "one")
    assert "✗ wrong" in page and "✓ correct" not in page
    assert f"final answer {given} · gold {record.answer}" in page


def test_unknown_key_names_it(dataset):
    folder, _ = dataset
    with pytest.raises(ViewerError, match="no-such-key"):
        render_html(folder, keys=["sample-00001", "no-such-key"])


def test_frame_mime():
    assert frame_mime(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert frame_mime(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert fmt_time(3725.25) == "1:02:05.2" and fmt_time(65.0) == "1:05.0"


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("view")(view_command)
    app.command("noop")(lambda: None)
    return app


def test_view_command(dataset, tmp_path):
    folder, all_samples = dataset
    out = tmp_path / "page" / "view.html"
    result = CliRunner().invoke(_app(), ["view", str(folder), "--key", "sample-00005,sample-00001",
                                         "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert list(_sections(page)) == ["sample-00005", "sample-00001"]
    result = CliRunner().invoke(_app(), ["view", str(folder), "--n", "2", "--out", str(out)])
    assert result.exit_code == 0 and page != out.read_text()
    assert out.read_text().count("<img") == sum(len(s.frames) for s in all_samples[:2])


def test_view_command_unknown_key_is_one_line(dataset, tmp_path):
    folder, _ = dataset
    result = CliRunner().invoke(_app(), ["view", str(folder), "--key", "nope", "--out", str(tmp_path / "v.html")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1 and "nope" in result.stderr
    assert not (tmp_path / "v.html").exists()


def _as_written(value):
    """Arguments as a person wrote them: the stored canonical floats (0.6000000000000001) read 0.6."""
    if isinstance(value, float):
        return float(f"{value:.10g}")
    if isinstance(value, dict):
        return {k: _as_written(v) for k, v in value.items()}
    return [_as_written(v) for v in value] if isinstance(value, list) else value

"""Bad videos: each is served frame-accurately or rejected with a clear reason; never a hang, never a crash.

A watchdog thread bounds every decode (decord can hang forever on files that over-report their frame
count, dmlc/decord#373; the package runs it in a worker it kills). A build over a folder mixing good
and bad videos completes and counts each rejection by reason.
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from dataset_builder import video
from dataset_builder.build import build_command
from tests.fixtures.videos import (
    audio_only_video,
    cfr_video,
    read_index,
    rotated_video,
    truncated_video,
    vfr_video,
    vp9_available,
    vp9_video,
)
from tests.reliability_fixtures import corrupt_mid_video, uhd_video, zero_duration_video
from validation.validator import validate_path

WATCHDOG_S = 90


def watchdog(fn, *args, timeout: float = WATCHDOG_S, **kwargs):
    """Run ``fn`` in a thread; fail the test (instead of hanging CI) when it does not return in time."""
    box: list = []

    def target():
        try:
            box.append(("ok", fn(*args, **kwargs)))
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box.append(("err", exc))

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        pytest.fail(f"{getattr(fn, '__name__', fn)} did not return within {timeout} s (hang)")
    kind, value = box[0]
    if kind == "err":
        raise value
    return value


def _times(info: video.VideoProbe, n: int = 12) -> list[float]:
    return [info.duration_s * i / n for i in range(n)] + [info.duration_s - 1e-3]


def _check_exact(path: Path, truth, backend: str, rotate_back=None) -> None:
    info = watchdog(video.probe, path)
    times = _times(info)
    frames = watchdog(video.frames_at, path, times, backend=backend, max_pixels=192 * 128, decord_timeout_s=20)
    for t, frame in zip(times, frames):
        image = frame.image if rotate_back is None else frame.image.transpose(rotate_back)
        assert read_index(image) == truth.index_at(t), f"{path.name} [{backend}] at {t:.3f}s"


@pytest.mark.parametrize("backend", ["pyav", "decord", "auto"])
def test_vp9_webm_is_frame_accurate_or_falls_back(backend):
    if not vp9_available():
        pytest.skip("no VP9 encoder in this PyAV build")
    _check_exact(vp9_video().path, vp9_video(), backend)


@pytest.mark.parametrize("backend", ["pyav", "decord", "auto"])
def test_vfr_mkv_is_frame_accurate(backend):
    truth = vfr_video(container="mkv")
    _check_exact(truth.path, truth, backend)


@pytest.mark.parametrize("backend", ["pyav", "auto"])
def test_rotated_video_is_display_oriented_and_frame_accurate(backend):
    truth = rotated_video(90)
    info = video.probe(truth.path)
    assert (info.display_width, info.display_height) == (truth.height, truth.width)
    _check_exact(truth.path, truth, backend, rotate_back=Image.Transpose.ROTATE_90)


def test_4k_video_is_downscaled_and_frame_accurate(tmp_path):
    path = uhd_video(tmp_path / "uhd.mp4")
    info = watchdog(video.probe, path)
    assert (info.width, info.height, info.frame_count) == (3840, 2160, 6)
    times = [i * 0.04 + 0.01 for i in range(6)]
    frames = watchdog(video.frames_at, path, times, max_pixels=384 * 216)
    assert all(f.image.width * f.image.height <= 384 * 216 for f in frames)
    assert [read_index(f.image) for f in frames] == list(range(6))


@pytest.mark.parametrize("backend", ["pyav", "decord", "auto"])
def test_a_file_that_over_reports_its_frames_is_rejected_not_hung(backend):
    """The faststart index declares 150 frames; the file was cut at 60 % (the decord#373 shape)."""
    truth = truncated_video()
    info = watchdog(video.probe, truth.path)
    assert info.frame_count == 150  # what the index claims
    early = watchdog(video.frames_at, truth.path, [0.0, 1.0], backend="pyav")
    assert [read_index(f.image) for f in early] == [0, 25]
    with pytest.raises(video.VideoError, match="truncated|decord cannot serve"):
        watchdog(video.frames_at, truth.path, _times(info), backend=backend, decord_timeout_s=20)


def test_corrupt_stream_mid_file_decodes_around_the_damage(tmp_path):
    """Corrupt packets are skipped; the undamaged start and end stay exact."""
    truth = cfr_video()
    path = corrupt_mid_video(tmp_path / "corrupt.mp4")
    times = [0.0, 0.5, 1.0, 2.0, 5.0, 5.5, 5.9]
    frames = watchdog(video.frames_at, path, times, backend="pyav")
    assert [read_index(f.image) for f in frames] == [truth.index_at(t) for t in times]


def test_corrupt_stream_mid_file_never_shows_another_frame_under_a_pts(tmp_path):
    """Each time either fails with a VideoError or returns the picture that belongs to the frame's pts."""
    truth = cfr_video()
    path = corrupt_mid_video(tmp_path / "corrupt.mp4")
    wrong = []
    for i in range(60):
        t = i * 0.1
        try:
            frame = watchdog(video.frames_at, path, [t], backend="pyav")[0]
        except video.VideoError:
            continue
        if read_index(frame.image) != truth.index_at(frame.pts_s):
            wrong.append((t, frame.pts_s, read_index(frame.image)))
    assert not wrong, wrong


@pytest.mark.parametrize("make, reason", [
    (audio_only_video, "no video stream"),
    (zero_duration_video, "no video stream|zero|no decodable frame"),
    (lambda p: (p.write_bytes(b""), p)[1], "empty"),
    (lambda p: (p.write_text("not a video\n"), p)[1], "not a readable video container"),
])
def test_unusable_files_are_rejected_with_a_clear_reason(tmp_path, make, reason):
    path = make(tmp_path / "bad.mp4")
    with pytest.raises(video.VideoError, match=reason) as raised:
        watchdog(video.probe, path)
    assert str(raised.value).startswith(str(path))


def test_a_build_over_bad_videos_completes_and_counts_rejections(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(cfr_video().path, videos / "good_cfr.mp4")
    shutil.copy(vfr_video(container="mkv").path, videos / "good_vfr.mkv")
    shutil.copy(rotated_video(90).path, videos / "good_rotated.mp4")
    shutil.copy(truncated_video().path, videos / "truncated.mp4")
    corrupt_mid_video(videos / "corrupt_mid.mp4")
    audio_only_video(videos / "audio_only.mp4")
    zero_duration_video(videos / "zero.mp4")
    (videos / "empty.mp4").write_bytes(b"")
    (videos / "text.mp4").write_text("this is not a video\n")
    if vp9_available():
        shutil.copy(vp9_video().path, videos / "good_vp9.webm")
    names = sorted(p.name for p in videos.iterdir())
    items = [{"id": f"q-{Path(n).stem}", "video": n, "question": "What is shown on screen?",
              "options": ["black and white blocks", "people", "a river"], "answer": "A"} for n in names]
    questions = tmp_path / "q.jsonl"
    questions.write_text("".join(json.dumps(q) + "\n" for q in items))
    config = tmp_path / "build.yaml"
    config.write_text("samples_per_question: 1\nmax_pixels: 9216\nmax_steps: 3\n")
    app = typer.Typer()
    app.command()(build_command)
    out = tmp_path / "out"
    args = ["--videos", str(videos), "--questions", str(questions), "--out", str(out), "--preset", "tiny",
            "--config", str(config), "--workdir", str(tmp_path / "work"), "--no-progress",
            "--keep-wrong-when-all-fail"]
    result = watchdog(CliRunner().invoke, app, args, timeout=240)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "build_report.json").read_text())
    # audio only, zero duration, empty, text, truncated (its frames past the cut are not there)
    assert sum(report["rejected_videos"].values()) == 5, report
    reasons = " ".join(report["rejected_videos"])
    for reason in ("no video stream", "empty", "not a readable video container", "no frame decodable"):
        assert reason in reasons, reasons
    # every question is accounted for: kept, or dropped by a named reason
    assert report["kept"] + sum(report["dropped"].values()) == len(names)
    good = {n for n in names if n.startswith("good")}
    assert report["kept"] >= len(good)
    assert validate_path(out).ok

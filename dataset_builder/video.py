"""Video access: probe a file, map timestamps to the frames a player shows, crop, resize and encode.

This is the one place that turns "second t of video V" into pixels; grounding, the video-space tools
and the loaders all go through it.

Time convention
    A timestamp is seconds from the START OF THE VIDEO: 0 is the first displayed frame, whatever the
    container start time is (MP4 edit lists, MPEG-TS offsets, trimmed recordings). The frame returned
    for ``t`` is the frame a player DISPLAYS at ``t``: the last frame whose presentation time is <= t,
    with ``t`` clamped into ``[0, duration)``. This holds on constant and variable frame rate files.

Orientation
    Images come out display-oriented: the rotation stored in the display matrix (phones write one for
    portrait video) is applied, and anamorphic pixels are resized to square ones. Crop boxes are in
    these display pixels.

Backends (``backend=`` of :func:`frames_at`)
    ``"pyav"``: PyAV (FFmpeg 8) in this process: seek to the keyframe before the first wanted time,
    decode forward through all wanted times in one pass, and seek again only when a keyframe lies
    between the decoder position and the next wanted time. Exact on every container and codec FFmpeg
    reads; it is the reference.
    ``"decord"``: decord in a worker process. decord maps time to frames with its own frame index
    (``get_frame_timestamp``, never ``round(t * fps)``). It can hang forever holding the GIL on files
    that over-report their frame count (dmlc/decord#373), so it never runs in the caller's process: a
    timed-out worker is killed. Its answer is used only when its frame count and duration agree with
    the PyAV probe.
    ``"auto"`` (default): :data:`AUTO_PREFERENCE` decides, and it is ``"pyav"``. Measured with
    ``benchmarks/bench_frames.py`` (N frames of the whole video, 8 frames in 10 s, 8 frames in 2 s;
    real clips and 360p/720p CFR/VFR H.264, on 2 shared cores), PyAV in-process was as fast as or
    faster than decord in its worker in most cases (the worker pays for pickling frames back), and
    never slower by more than the run-to-run noise. PyAV is also exact on every container, needs no
    extra process and cannot hang the caller. With ``AUTO_PREFERENCE = "decord"``, auto uses decord
    only for H.264/HEVC in MP4/MOV with an exact frame count (decord is known to fail random access
    on VP9/WebM and reports the declared, not the real, frame rate of VFR Matroska), and falls back
    to PyAV whenever decord fails, times out or disagrees with the probe.
"""

from __future__ import annotations

import atexit
import io
import logging
import math
import os
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import av.container
    import av.video.frame
    import av.video.stream

logger = logging.getLogger(__name__)

Backend = Literal["auto", "decord", "pyav"]
PathLike = str | os.PathLike[str]

AUTO_PREFERENCE: Literal["pyav", "decord"] = "pyav"
"""The backend ``backend="auto"`` tries first (see the module docstring for why PyAV)."""
DECORD_TIMEOUT_S = 60.0
"""Default limit for one decord request (includes starting the worker and indexing the file)."""
_EPS = 1e-6  # seconds; far below any frame duration, absorbs float error of pts * time_base
_SEEK_GAP_S = 2.0  # without a keyframe index: seek when the next time is this far ahead
_SCAN_PACKETS = 2000  # packets read to time frames when the container has no per-frame index
_DECORD_CODECS = frozenset({"h264", "hevc"})
_ROTATE = {90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_90}


class VideoError(ValueError):
    """A video file that cannot be used; ``str()`` is one line: ``PATH: what is wrong; what to do``."""

    def __init__(self, path: PathLike, reason: str) -> None:
        super().__init__(str(path), reason)
        self.path = str(path)
        self.reason = " ".join(reason.split())

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class VideoProbe:
    """What the package knows about a video file (from PyAV; no full decode)."""

    path: str
    duration_s: float
    """From the first displayed frame to the end of the last one."""
    fps: float
    """Average frame rate (frame_count / duration)."""
    frame_count: int
    start_time_s: float
    """Presentation time of the first frame in the container's clock (0 for most files)."""
    rotation: int
    """Clockwise degrees a player rotates the stored picture by: 0, 90, 180 or 270."""
    codec: str
    width: int
    """Decoded picture size, before rotation."""
    height: int
    display_width: int
    """Size the frames returned by :func:`frames_at` have (rotation and pixel aspect applied)."""
    display_height: int
    is_vfr: bool
    has_video: bool = True
    container: str = ""
    frame_count_exact: bool = True
    """False when ``frame_count`` is estimated (long files in containers without a frame index)."""

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class Frame:
    """One decoded frame: ``image`` is what is displayed at ``timestamp_s``."""

    timestamp_s: float
    """The requested time (seconds from the video start)."""
    pts_s: float
    """Presentation time of the returned frame (seconds from the video start), <= the clamped request."""
    image: Image.Image
    """RGB, display-oriented, within the requested pixel budget."""

    @property
    def width(self) -> int:
        return self.image.width

    @property
    def height(self) -> int:
        return self.image.height


# --------------------------------------------------------------------------------------------- probe


def probe(path: PathLike) -> VideoProbe:
    """Read duration, frame rate, frame count, start time, rotation and sizes of a video file.

    Raises :class:`VideoError` for a missing, empty or unreadable file, a file without a video
    stream (audio only, text), a still image, or a video of zero duration.
    """
    p = _check_file(path)
    st = p.stat()
    try:  # keyed by absolute path: the probe stays valid when the working directory changes
        return _probe_cached(str(p.resolve()), st.st_mtime_ns, st.st_size)
    except VideoError as e:
        raise VideoError(path, e.reason) from None  # name the file as the caller did


_probe_file = probe  # frames_at's ``probe`` argument shadows the function


def _check_file(path: PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise VideoError(p, "file not found; check the path")
    if p.is_dir():
        raise VideoError(p, "is a directory, not a video file; pass a video file")
    if p.stat().st_size == 0:
        raise VideoError(p, "file is empty (0 bytes); re-download or re-export it")
    return p


def _open(path: str) -> av.container.InputContainer:
    import av

    try:
        return av.open(path)
    except av.FFmpegError as e:
        raise VideoError(
            path, f"not a readable video container ({_ffmpeg_reason(e)}); pass a video file"
        ) from e


def _ffmpeg_reason(e: Exception) -> str:
    return getattr(e, "strerror", None) or str(e)


def _video_stream(container: av.container.InputContainer, path: str) -> av.video.stream.VideoStream:
    import av

    for s in container.streams.video:
        if not s.disposition & av.stream.Disposition.attached_pic:
            return s
    kinds = ", ".join(sorted({s.type for s in container.streams})) or "none"
    raise VideoError(path, f"no video stream (streams: {kinds}); pass a file with a video track")


@lru_cache(maxsize=256)
def _probe_cached(path: str, mtime_ns: int, size: int) -> VideoProbe:
    del mtime_ns, size  # cache key only: a rewritten file is probed again
    with _open(path) as container:
        vs = _video_stream(container, path)
        if container.format.name.endswith("_pipe") or container.format.name == "image2":
            raise VideoError(
                path, f"is a still image ({vs.codec_context.name}), not a video; pass a video file"
            )
        first = _first_frame(container, vs, path)
        tb = float(vs.time_base)
        start = _frame_time(first, tb)
        ticks = _index_ticks(vs)
        scan = None if ticks is not None else _scan_packets(path, vs.index, tb)
        if scan is not None:
            ticks = scan[0]
        duration, count, exact = _duration_and_count(container, vs, start, scan)
        rotation = _rotation(first, vs)
        width, height = first.width, first.height
        codec, fmt = vs.codec_context.name, container.format.name
        sar = vs.sample_aspect_ratio
    if not duration or duration <= 0 or not math.isfinite(duration):
        raise VideoError(
            path, "video has zero or unknown duration; re-mux or re-encode it (e.g. with ffmpeg)"
        )
    dw, dh = _display_size(width, height, sar, rotation)
    return VideoProbe(
        path=path,
        duration_s=duration,
        fps=count / duration,
        frame_count=count,
        start_time_s=start,
        rotation=rotation,
        codec=codec,
        width=width,
        height=height,
        display_width=dw,
        display_height=dh,
        is_vfr=_is_vfr(ticks or [], tb),
        has_video=True,
        container=fmt,
        frame_count_exact=exact,
    )


def _first_frame(
    container: av.container.InputContainer, vs: av.video.stream.VideoStream, path: str
) -> av.video.frame.VideoFrame:
    frame = next(_decode_frames(container, vs), None)
    if frame is None:
        raise VideoError(path, "video stream has no decodable frame; re-encode or re-download the file")
    return frame


def _frame_time(frame: av.video.frame.VideoFrame, tb: float) -> float:
    pts = frame.pts if frame.pts is not None else frame.dts
    return 0.0 if pts is None else pts * tb


def _index_ticks(vs: av.video.stream.VideoStream) -> list[int] | None:
    """Packet times (time-base ticks) from a complete per-frame index (MP4/MOV), or None without one."""
    entries = vs.index_entries
    if len(entries) < 2 or (vs.frames and len(entries) != vs.frames):
        return None
    return [e.timestamp for e in entries[:_SCAN_PACKETS] if not e.is_discard]


def _scan_packets(path: str, index: int, tb: float) -> tuple[list[int], bool, float]:
    """Demux (no decode) up to _SCAN_PACKETS video packets: (sorted pts ticks, reached EOF, end time s)."""
    import av

    pts: list[int] = []
    end = 0.0
    eof = True
    with _open(path) as container:
        vs = container.streams[index]
        try:
            for packet in container.demux(vs):
                if packet.pts is None:
                    continue
                if len(pts) >= _SCAN_PACKETS:
                    eof = False
                    break
                pts.append(packet.pts)
                end = max(end, (packet.pts + (packet.duration or 0)) * tb)
        except av.FFmpegError:
            pass
    return sorted(pts), eof, end


def _duration_and_count(
    container: av.container.InputContainer,
    vs: av.video.stream.VideoStream,
    start: float,
    scan: tuple[list[int], bool, float] | None,
) -> tuple[float, int, bool]:
    tb = float(vs.time_base)
    if scan is not None and scan[1] and len(scan[0]) > 1:  # whole stream scanned: exact
        ticks, _, end = scan
        last_dur = (ticks[-1] - ticks[-2]) * tb
        return max(end, ticks[-1] * tb + last_dur) - start, len(ticks), True
    if vs.duration:
        duration = vs.duration * tb
    elif container.duration:
        duration = container.duration / 1e6 - (start - (container.start_time or 0) / 1e6)
    else:
        duration = 0.0
    if vs.frames:
        return duration, vs.frames, True
    rate = _rate_from_ticks(scan[0], tb) if scan else None
    rate = rate or float(vs.average_rate or vs.guessed_rate or 25)
    return duration, max(1, round(duration * rate)), False


def _rate_from_ticks(ticks: list[int], tb: float) -> float | None:
    if len(ticks) < 2 or ticks[-1] <= ticks[0]:
        return None
    return (len(ticks) - 1) / ((ticks[-1] - ticks[0]) * tb)


def _is_vfr(ticks: list[int], tb: float) -> bool:
    """True when frame intervals differ by more than 2 % (or 1.5 ticks of the time base) from the median."""
    values = sorted(ticks)
    deltas = np.diff(np.asarray(values, dtype=np.float64)) * tb
    deltas = deltas[deltas > 0]
    if deltas.size < 2:
        return False
    median = float(np.median(deltas))
    return bool(np.any(np.abs(deltas - median) > max(0.02 * median, 1.5 * tb)))


def _rotation(frame: av.video.frame.VideoFrame, vs: av.video.stream.VideoStream) -> int:
    """Clockwise display rotation: display matrix side data first, then the legacy ``rotate`` tag."""
    ccw = frame.rotation  # FFmpeg's av_display_rotation_get(): counter-clockwise degrees
    if ccw:
        return int(round(-ccw / 90) * 90) % 360
    try:
        return int(round(float(vs.metadata.get("rotate", 0)) / 90) * 90) % 360
    except ValueError:
        return 0


def _display_size(width: int, height: int, sar: Fraction | None, rotation: int) -> tuple[int, int]:
    if sar and sar > 0 and sar != 1:
        width = max(1, round(width * sar))
    return (height, width) if rotation in (90, 270) else (width, height)


# ------------------------------------------------------------------------------------------- frames


def frames_at(
    path: PathLike,
    timestamps: Sequence[float],
    *,
    max_pixels: int | None = None,
    probe: VideoProbe | None = None,
    backend: Backend = "auto",
    decord_timeout_s: float = DECORD_TIMEOUT_S,
) -> list[Frame]:
    """The frames displayed at ``timestamps`` (seconds from the video start), in the requested order.

    Times are clamped into ``[0, duration)``; each image is RGB, display-oriented and, with
    ``max_pixels``, downscaled (aspect kept) to at most that many pixels. All times are served in one
    pass over the file. Pass ``probe`` to skip probing again. See the module docstring for backends.
    """
    info = probe if probe is not None else _probe_file(path)
    times = [_check_time(t) for t in timestamps]
    if not times:
        return []
    end = max(0.0, info.duration_s - _EPS)
    wanted = sorted({min(max(t, 0.0), end) for t in times})
    served = _serve(info, wanted, max_pixels, backend, decord_timeout_s)
    return [Frame(t, *served[min(max(t, 0.0), end)]) for t in times]


def _check_time(t: float) -> float:
    t = float(t)
    if not math.isfinite(t):
        raise ValueError(f"timestamp must be a finite number of seconds, got {t!r}")
    return t


def choose_backend(info: VideoProbe, prefer: Literal["pyav", "decord"] | None = None) -> tuple[str, str]:
    """The backend ``"auto"`` tries first for this file (``prefer``: default AUTO_PREFERENCE), and why."""
    if (prefer or AUTO_PREFERENCE) == "pyav":
        return "pyav", "PyAV in-process: exact on every file, no worker process to pay for"
    if "mp4" not in info.container and "mov" not in info.container:
        return "pyav", f"container {info.container!r}: decord is only trusted with MP4/MOV"
    if info.codec not in _DECORD_CODECS:
        return "pyav", f"codec {info.codec!r}: decord is only trusted with H.264/HEVC"
    if not info.frame_count_exact:
        return "pyav", "frame count unknown: decord's answer could not be checked"
    return "decord", "H.264/HEVC in MP4/MOV"


def _serve(
    info: VideoProbe, wanted: list[float], max_pixels: int | None, backend: Backend, timeout: float
) -> dict[float, tuple[float, Image.Image]]:
    if backend not in ("auto", "decord", "pyav"):
        raise ValueError(f"backend must be 'auto', 'decord' or 'pyav', got {backend!r}")
    use = backend if backend != "auto" else choose_backend(info)[0]
    if use == "decord":
        try:
            return _decord_frames(info, wanted, max_pixels, timeout)
        except _DecordFailed as e:
            if backend == "decord":
                raise VideoError(info.path, f"decord cannot serve this file ({e}); use backend='pyav'") from e
            logger.info("%s: decord failed (%s); decoding with PyAV", info.path, e)
    return _pyav_frames(info, wanted, max_pixels)


def _finish_image(
    image: Image.Image, info: VideoProbe, max_pixels: int | None, rotated: bool = False
) -> Image.Image:
    """Rotate to display orientation (unless ``rotated``), square the pixels, apply the pixel budget.

    An image already scaled to the budget (by the decord worker) is left at its size.
    """
    if image.mode != "RGB":
        image = image.convert("RGB")
    if not rotated and info.rotation in _ROTATE:
        image = image.transpose(_ROTATE[info.rotation])
    size = budget_size(info.display_width, info.display_height, max_pixels)
    return image if image.size == size else image.resize(size, Image.Resampling.BICUBIC)


# ---------------------------------------------------------------------------------------------- PyAV


def _pyav_frames(
    info: VideoProbe, wanted: list[float], max_pixels: int | None
) -> dict[float, tuple[float, Image.Image]]:
    out: dict[float, tuple[float, Image.Image]] = {}
    images: dict[int, Image.Image] = {}
    with _open(info.path) as container:
        vs = _video_stream(container, info.path)
        vs.thread_type = "AUTO"  # frame threads: faster on real footage (benchmarks/bench_frames.py)
        cursor = _Cursor(container, vs, info.start_time_s)
        for t in wanted:
            frame = cursor.frame_at(info.start_time_s + t)
            if frame is None:
                raise VideoError(info.path, f"no frame decodable at {t:.3f} s; the file may be truncated")
            key = frame.pts if frame.pts is not None else id(frame)
            if key not in images:
                images[key] = _finish_image(frame.to_image(), info, max_pixels)
            out[t] = (max(0.0, cursor.time(frame) - info.start_time_s), images[key])
    return out


class _Cursor:
    """Decodes forward through increasing times; seeks only when a keyframe lies ahead of the decoder."""

    def __init__(
        self, container: av.container.InputContainer, vs: av.video.stream.VideoStream, start_s: float
    ) -> None:
        self.container, self.vs = container, vs
        self.tb = float(vs.time_base)
        self.start = start_s
        self.entries = vs.index_entries
        self.frames: Iterator[av.video.frame.VideoFrame] | None = None
        self.current: av.video.frame.VideoFrame | None = None  # last frame at or before the last target
        self.pending: av.video.frame.VideoFrame | None = None  # next decoded frame, not yet passed

    def time(self, frame: av.video.frame.VideoFrame) -> float:
        return _frame_time(frame, self.tb)

    def frame_at(self, target: float) -> av.video.frame.VideoFrame | None:
        if self.frames is None:
            self._restart(target if self._keyframe_between(self.start, target) else None)
        elif self._should_seek(target):
            self._restart(target)
        back_off = 1.0
        while True:
            self._advance(target)
            if self.current is not None or self.pending is None:
                return self.current
            if self.time(self.pending) <= self.start + _EPS or target - back_off < self.start - 1.0:
                return self.pending  # the very first frame: nothing is displayed earlier
            self._restart(target - back_off)  # the seek landed after target (B-frames, open GOP)
            back_off *= 2

    def _advance(self, target: float) -> None:
        while self.pending is not None and self.time(self.pending) <= target + _EPS:
            self.current = self.pending
            self.pending = next(self.frames, None)

    def _should_seek(self, target: float) -> bool:
        if self.pending is None:  # end of stream: the last frame is displayed until the end
            return self.current is not None and target < self.time(self.current) - _EPS
        return self._keyframe_between(self.time(self.pending), target)

    def _keyframe_between(self, position: float, target: float) -> bool:
        """Whether seeking to ``target`` beats decoding forward from ``position``."""
        if len(self.entries) < 2:  # no keyframe index (e.g. Matroska without cues)
            return target - position > _SEEK_GAP_S
        i = self.entries.search_timestamp(int(target / self.tb), backward=True)
        return i >= 0 and self.entries[i].timestamp * self.tb > position + _EPS

    def _restart(self, seek_to: float | None) -> None:
        """Decode from the start of the stream, or from the keyframe at or before ``seek_to``."""
        self.current = None
        if seek_to is not None:
            self.container.seek(int(math.floor(seek_to / self.tb)), stream=self.vs, backward=True)
        self.frames = _decode_frames(self.container, self.vs)
        self.pending = next(self.frames, None)


def _decode_frames(
    container: av.container.InputContainer, vs: av.video.stream.VideoStream
) -> Iterator[av.video.frame.VideoFrame]:
    """Frames in presentation order from the demuxer position.

    Corrupt packets are skipped, and so is every frame after one until the next keyframe: those frames
    are predicted from a lost reference and would show another moment's picture under their own pts.
    A request in the damaged stretch gets the last good frame, with its true pts.
    """
    import av

    damaged = False
    try:
        for packet in container.demux(vs):
            try:
                decoded = packet.decode()
            except av.InvalidDataError as e:
                logger.debug("skipping undecodable packet: %s", e)
                damaged = True
                continue
            for frame in decoded:
                if damaged and not frame.key_frame:
                    continue
                damaged = False
                yield frame
    except av.FFmpegError as e:  # demuxer error (truncated file): treat as end of stream
        logger.debug("demux stopped: %s", e)


# -------------------------------------------------------------------------------------------- decord


class _DecordFailed(RuntimeError):
    """decord could not serve the request (error, crash, timeout, or disagreement with the probe)."""


def _decord_frames(
    info: VideoProbe, wanted: list[float], max_pixels: int | None, timeout: float
) -> dict[float, tuple[float, Image.Image]]:
    # Scale in the worker (less to pipe back) unless non-square pixels make the budget apply later.
    square = info.display_width * info.display_height == info.width * info.height
    request = {
        "op": "frames",
        "path": info.path,
        "times": wanted,
        "frame_count": info.frame_count,
        "duration": info.duration_s,
        "max_pixels": max_pixels if square else None,
    }
    answer = _WORKER.request(request, timeout)
    images: dict[int, Image.Image] = {}
    out: dict[float, tuple[float, Image.Image]] = {}
    for t, index, pts in zip(wanted, answer["index"], answer["pts"], strict=True):
        if index not in images:
            image = Image.fromarray(answer["arrays"][index])
            images[index] = _finish_decord(image, info, request["max_pixels"], max_pixels)
        out[t] = (pts, images[index])
    return out


def _finish_decord(
    image: Image.Image, info: VideoProbe, scaled_to: int | None, max_pixels: int | None
) -> Image.Image:
    """decord applies the display rotation itself (checked where the shape tells), then finish as usual."""
    coded = budget_size(info.width, info.height, scaled_to)
    turned = coded[::-1]
    if image.size not in (coded, turned):
        raise _DecordFailed(f"decord returned {image.width}x{image.height}, expected {coded[0]}x{coded[1]}")
    rotated = not (info.rotation in (90, 270) and image.size == coded and coded != turned)
    return _finish_image(image, info, max_pixels, rotated=rotated)


class _Worker:
    """One long-lived decord worker process per parent process; killed when a request times out."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._pid = os.getpid()
        self._lock = threading.Lock()

    def request(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request and wait up to ``timeout`` seconds; a worker that does not answer is killed."""
        with self._lock:
            answer = self._exchange(self._ensure(), request, timeout)
        if "error" in answer:
            raise _DecordFailed(answer["error"])
        return answer["ok"]

    def _exchange(
        self, proc: subprocess.Popen[bytes], request: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        box: list[Any] = []
        try:
            pickle.dump(request, proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            proc.stdin.flush()
        except OSError as e:
            self._kill()
            raise _DecordFailed(f"worker is gone ({e})") from e
        reader = threading.Thread(target=_read_answer, args=(proc.stdout, box), daemon=True)
        reader.start()
        reader.join(timeout)
        if reader.is_alive():
            self._kill()  # the reader then sees end of file and ends
            reader.join(5)
            raise _DecordFailed(f"no answer within {timeout:g} s (decord hung?); worker killed")
        if not box or isinstance(box[0], BaseException):
            self._kill()
            raise _DecordFailed(f"worker died ({box[0] if box else 'no answer'})")
        return box[0]

    def _ensure(self) -> subprocess.Popen[bytes]:
        if self._pid != os.getpid():  # forked child: the parent's worker is not ours
            self._proc, self._pid = None, os.getpid()
        if self._proc is None or self._proc.poll() is not None:
            root = str(Path(__file__).resolve().parents[1])
            boot = f"import sys; sys.path.insert(0, {root!r}); import {__name__} as m; m._worker_main()"
            self._proc = subprocess.Popen(
                [sys.executable, "-c", boot],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        return self._proc

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def close(self) -> None:
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is None or self._pid != os.getpid():
            return
        try:
            proc.stdin.close()
            proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()


def _read_answer(stream: io.BufferedReader, box: list[Any]) -> None:
    try:
        box.append(pickle.load(stream))
    except BaseException as e:  # noqa: BLE001 - reported to the waiting thread
        box.append(e)


_WORKER = _Worker()
atexit.register(_WORKER.close)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: setattr(_WORKER, "_lock", threading.Lock()))


def _worker_main() -> None:
    """Entry point of the decord worker: pickled requests on stdin, pickled answers on stdout."""
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints from native code must not corrupt the answer stream
    cache: dict[str, Any] = {}
    while True:
        try:
            request = pickle.load(sys.stdin.buffer)
        except EOFError:
            return
        try:
            answer: dict[str, Any] = {"ok": _worker_serve(request, cache)}
        except Exception as e:  # noqa: BLE001 - every failure goes back to the caller as text
            answer = {"error": f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"}
        pickle.dump(answer, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()


def _worker_serve(request: dict[str, Any], cache: dict[str, Any]) -> dict[str, Any]:
    if request["op"] == "sleep":  # lets tests exercise the timeout path
        time.sleep(request["seconds"])
        return {}
    vr, rel = _worker_reader(request["path"], cache)
    n, duration = len(vr), request["duration"]
    if n != request["frame_count"]:
        raise RuntimeError(f"decord sees {n} frames, the container declares {request['frame_count']}")
    if not 0 <= duration - rel[-1] <= max(1.0, 5 * duration / n):
        raise RuntimeError(f"decord's last frame starts at {rel[-1]:.3f} s, the video lasts {duration:.3f} s")
    times = np.asarray(request["times"], dtype=np.float64)
    index = np.clip(np.searchsorted(rel, times + _EPS, side="right") - 1, 0, n - 1)
    unique = sorted(set(index.tolist()))
    batch = vr.get_batch(unique).asnumpy()
    budget = request["max_pixels"]
    arrays = {i: batch[k] if not budget else _scaled(batch[k], budget) for k, i in enumerate(unique)}
    return {"index": index.tolist(), "pts": rel[index].tolist(), "arrays": arrays}


def _worker_reader(path: str, cache: dict[str, Any]) -> tuple[Any, np.ndarray]:
    """The decord reader of ``path`` and its frame start times from the first frame (cached)."""
    import decord

    key = f"{path}:{os.stat(path).st_mtime_ns}"
    if cache.get("key") != key:
        cache.clear()
        vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=0)
        starts = np.asarray(vr.get_frame_timestamp(np.arange(len(vr))), np.float64)[:, 0]
        cache.update(key=key, vr=vr, rel=starts - starts[0])
    return cache["vr"], cache["rel"]


def _scaled(array: np.ndarray, max_pixels: int) -> np.ndarray:
    return np.asarray(resize_to_budget(Image.fromarray(array), max_pixels))


# ---------------------------------------------------------------------------------- sampling helpers


def uniform_timestamps(start_s: float, end_s: float, n: int) -> list[float]:
    """``n`` times uniformly spread over ``[start_s, end_s]``: the centres of ``n`` equal bins."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not (math.isfinite(start_s) and math.isfinite(end_s)) or end_s < start_s:
        raise ValueError(f"need a finite interval with start <= end, got [{start_s}, {end_s}]")
    step = (end_s - start_s) / n if n else 0.0
    return [start_s + (i + 0.5) * step for i in range(n)]


def sample_uniform(
    path: PathLike, start_s: float = 0.0, end_s: float | None = None, n: int = 8, **kw: Any
) -> list[Frame]:
    """``n`` frames uniformly over ``[start_s, end_s]`` (default: the whole video); ``kw`` go to
    :func:`frames_at`."""
    info = kw.pop("probe", None) or probe(path)
    end = info.duration_s if end_s is None else end_s
    return frames_at(path, uniform_timestamps(start_s, end, n), probe=info, **kw)


# ------------------------------------------------------------------------------------ image helpers


def crop(image: Image.Image, box: Sequence[float]) -> Image.Image:
    """Crop ``box`` = [x0, y0, x1, y1] (display pixels, x1/y1 exclusive) out of ``image``."""
    if len(box) != 4:
        raise ValueError(f"crop box must be [x0, y0, x1, y1], got {list(box)!r}")
    try:
        x0, y0, x1, y1 = (int(round(float(v))) for v in box)
    except (TypeError, ValueError) as e:
        raise ValueError(f"crop box must hold 4 numbers, got {list(box)!r}") from e
    w, h = image.size
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise ValueError(
            f"crop box {[x0, y0, x1, y1]} is not inside the {w}x{h} image with x0 < x1 and y0 < y1"
        )
    return image.crop((x0, y0, x1, y1))


def resize_to_budget(
    image: Image.Image, max_pixels: int | None, min_pixels: int | None = None
) -> Image.Image:
    """Scale ``image`` (aspect kept) so width*height <= ``max_pixels`` and, if given, >= ``min_pixels``."""
    size = budget_size(image.width, image.height, max_pixels, min_pixels)
    return image if size == image.size else image.resize(size, Image.Resampling.BICUBIC)


def budget_size(
    width: int, height: int, max_pixels: int | None, min_pixels: int | None = None
) -> tuple[int, int]:
    """The size :func:`resize_to_budget` gives a ``width`` x ``height`` image."""
    if max_pixels is not None and max_pixels < 1:
        raise ValueError(f"max_pixels must be >= 1, got {max_pixels}")
    if min_pixels is not None and max_pixels is not None and min_pixels > max_pixels:
        raise ValueError(f"min_pixels ({min_pixels}) > max_pixels ({max_pixels})")
    area = width * height
    if max_pixels is not None and area > max_pixels:
        scale = math.sqrt(max_pixels / area)
        w, h = max(1, math.floor(width * scale)), max(1, math.floor(height * scale))
        if w * h > max_pixels:  # float error, or a side clamped to 1 on an extreme aspect ratio
            w, h = (max(1, max_pixels // h), h) if w >= h else (w, max(1, max_pixels // w))
        return w, h
    if min_pixels is not None and area < min_pixels:
        scale = math.sqrt(min_pixels / area)
        return math.ceil(width * scale), math.ceil(height * scale)
    return width, height


def encode_image(
    image: Image.Image, format: Literal["jpeg", "webp", "png"] = "jpeg", quality: int = 90
) -> bytes:
    """Encode ``image`` as JPEG or WebP (lossy, ``quality`` 1-100) or PNG (lossless) bytes."""
    fmt = format.lower()
    if fmt == "jpg":
        fmt = "jpeg"
    if fmt not in ("jpeg", "webp", "png"):
        raise ValueError(f"format must be 'jpeg', 'webp' or 'png', got {format!r}")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")
    buf = io.BytesIO()
    img = image if image.mode == "RGB" else image.convert("RGB")
    if fmt == "png":
        img.save(buf, format="PNG")
    else:
        img.save(buf, format=fmt.upper(), quality=quality)
    return buf.getvalue()

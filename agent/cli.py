"""The ``videothinker`` command line: one root app; each package contributes its commands.

Commands are registered here (the top floor may import every package); heavy libraries are imported
inside the command functions so ``videothinker --help`` stays fast.
"""

from __future__ import annotations

import logging

import typer

from agent import commands as agent_commands
from agent import doctor
from cards import cli as cards_cli
from dataset_builder import build, examples
from dataset_builder import cli as builder_cli
from sft import cli as sft_cli
from validation import cli as validation_cli

app = typer.Typer(
    name="videothinker",
    help="Build, validate, publish, load and train on VideoThinker video + tool-call trajectories.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

app.command("build", help="Build trajectory shards from raw videos and multiple-choice questions.")(
    build.build_command
)
app.command("example-inputs", help="Write a small real build input to try `videothinker build`.")(
    examples.example_inputs_command
)
app.command("validate", help="Check a dataset folder (or one shard) against the sample contract.")(
    validation_cli.validate_command
)
app.command("probe", help="Print what the package knows about a video file.")(builder_cli.probe_command)
app.command("frames", help="Write the frames grounding would use, as PNG named by timestamp.")(
    builder_cli.frames_command
)

app.command("train", help="Fine-tune a VideoLLM on streamed shards with the TRL recipe (LoRA or full).")(
    sft_cli.train_command
)
app.command("agent", help="Answer one question about one video with the agent; print the trajectory.")(
    agent_commands.agent_command
)
app.command("eval", help="Run a long-video benchmark (MLVU, LVBench, Video-MME, LongVideoBench).")(
    agent_commands.eval_command
)
app.command("card", help="Write the dataset card (README.md) with statistics and plots.")(cards_cli.card_command)
app.command("view", help="Write a self-contained HTML page showing trajectories with their frames.")(
    cards_cli.view_command
)
app.command("publish", help="Upload a validated dataset folder to the Hugging Face Hub.")(cards_cli.publish_command)
app.command("doctor", help="Check the environment: Python, torch/CUDA, decoders, FFmpeg, disk, Hub, endpoints.")(
    doctor.doctor_command
)


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages.")) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")


def main() -> None:
    app()


if __name__ == "__main__":
    main()

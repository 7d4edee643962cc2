"""Command functions of ``dataset_builder`` for the ``videothinker`` CLI.

A plain module of typer-compatible functions (no app object): the root app registers them, e.g.
``app.command("probe")(probe_command)``. Heavy imports stay inside the functions. Bad input ends with
one line on stderr (``error: ...``) and exit code 2, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, NoReturn

import typer


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def probe_command(
    video: Annotated[Path, typer.Argument(help="Video file to inspect.", show_default=False)],
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Print what the package knows about a video file: duration, frame rate, start time, rotation, sizes."""
    from dataset_builder import video as V

    try:
        info = V.probe(video)
    except V.VideoError as e:
        _fail(str(e))
    backend, why = V.choose_backend(info)
    if json_out:
        typer.echo(json.dumps({**info.to_dict(), "backend": backend}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=str(video), show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    rows = {
        "duration": f"{info.duration_s:.3f} s",
        "frames": f"{info.frame_count}{'' if info.frame_count_exact else ' (estimated)'}",
        "fps (average)": f"{info.fps:.3f}{' (variable frame rate)' if info.is_vfr else ''}",
        "start time": f"{info.start_time_s:.3f} s",
        "codec / container": f"{info.codec} / {info.container}",
        "coded size": f"{info.width}x{info.height}",
        "rotation": f"{info.rotation}° clockwise",
        "display size": f"{info.display_width}x{info.display_height}",
        "decoder": f"{backend} ({why})",
    }
    for key, value in rows.items():
        table.add_row(key, value)
    Console().print(table)


def _parse_times(at: str) -> list[float]:
    try:
        times = [float(part) for part in at.split(",") if part.strip()]
    except ValueError:
        _fail(f"--at takes comma-separated seconds like '1.5,30,62.25', got {at!r}")
    if not times or min(times) < 0:
        _fail(f"--at takes comma-separated seconds >= 0 like '1.5,30,62.25', got {at!r}")
    return times


def frames_command(
    video: Annotated[Path, typer.Argument(help="Video file to read frames from.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", help="Folder to write the PNG files into (created).")],
    at: Annotated[
        str | None, typer.Option("--at", help="Comma-separated seconds from the video start, e.g. '1.5,30'.")
    ] = None,
    interval: Annotated[
        tuple[float, float] | None,
        typer.Option("--interval", help="START END in seconds: --n frames uniformly over it (FrameZoom)."),
    ] = None,
    n: Annotated[
        int, typer.Option("--n", min=1, help="Frames to sample over --interval or the whole video.")
    ] = 8,
    max_pixels: Annotated[
        int | None, typer.Option("--max-pixels", min=1, help="Pixel budget per frame (aspect kept).")
    ] = None,
) -> None:
    """Write the frames grounding would use as PNG files named by timestamp (t0012.500.png).

    --at: exact times. --interval: --n frames uniformly over it. Neither: --n over the whole video.
    """
    from dataset_builder import video as V

    if at is not None and interval is not None:
        _fail("give --at or --interval, not both")
    try:
        info = V.probe(video)
        if at is not None:
            times = _parse_times(at)
        else:
            start, end = interval if interval is not None else (0.0, info.duration_s)
            if not 0 <= start <= end:
                _fail(f"--interval needs 0 <= START <= END, got {start} {end}")
            times = V.uniform_timestamps(start, end, n)
        frames = V.frames_at(video, times, max_pixels=max_pixels, probe=info)
    except V.VideoError as e:
        _fail(str(e))
    out.mkdir(parents=True, exist_ok=True)
    for frame in frames:
        path = out / f"t{frame.timestamp_s:08.3f}.png"
        frame.image.save(path, format="PNG")
        typer.echo(
            f"{path}\t{frame.timestamp_s:.3f}s -> frame at {frame.pts_s:.3f}s\t{frame.width}x{frame.height}"
        )

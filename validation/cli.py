"""``videothinker validate``: check a dataset folder, a folder of shards or one shard against the contract.

Exit codes: 0 when no problem is found, 1 when problems are found, 2 when PATH does not exist (or the
arguments are wrong). The root app (``agent/cli.py``) registers ``validate_command``.
"""

from __future__ import annotations

from pathlib import Path

import typer


def validate_command(
    path: Path = typer.Argument(  # noqa: B008 - typer's declaration style
        ..., help="A dataset folder (with index.json), a folder of .tar shards, or a single .tar shard."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the whole report as JSON, not a summary."),
    max_errors: int | None = typer.Option(
        None, "--max-errors", min=1, help="Stop after this many problems (the counts are then partial)."
    ),
) -> None:
    """Validate every shard, record and frame; print a summary (or JSON) and exit non-zero on problems."""
    if not path.exists():
        typer.echo(f"error: {path}: does not exist", err=True)
        raise typer.Exit(2)
    from validation.validator import validate_path  # imported here so `videothinker --help` stays fast

    report = validate_path(path, max_errors=max_errors)
    typer.echo(report.to_json() if json_out else report.summary())
    raise typer.Exit(0 if report.ok else 1)

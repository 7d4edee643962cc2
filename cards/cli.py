"""Command functions for ``videothinker card``, ``view`` and ``publish`` (registered in ``agent/cli.py``).

Each is a plain function with typer parameters. User errors print one line on stderr (a refused
publish also prints the validator's summary) and exit non-zero; no traceback reaches the user.
Heavy libraries are imported inside the functions so ``videothinker --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def _fail(message: str, code: int = 1, details: str = "") -> typer.Exit:
    if details:
        typer.echo(details, err=True)
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _dataset_folder(folder: Path) -> Path:
    if not folder.is_dir():
        raise _fail(f"{folder}: not a folder; pass a dataset folder (the output of `videothinker build`)", 2)
    if not (folder / "index.json").is_file():
        raise _fail(f"{folder}: no index.json; is this a dataset folder (`videothinker build`)?", 2)
    return folder


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def card_command(
    folder: Annotated[Path, typer.Argument(help="The dataset folder (with index.json and data/).")],
    repo: Annotated[str | None, typer.Option("--repo", help="Hub repo id for the loading examples.")] = None,
    license: Annotated[str | None, typer.Option(
        "--license", help="Dataset license id (default: the videos' shared license, else 'other').",
    )] = None,
) -> None:
    """Recount statistics from the shards, draw the plots and write the dataset card (README.md)."""
    from cards.card import CardError, write_card

    folder = _dataset_folder(folder)
    try:
        path = write_card(folder, repo=repo, license=license)
    except (CardError, ValueError, OSError) as exc:
        raise _fail(f"{folder}: cannot write the card: {_one_line(exc)}") from None
    typer.echo(f"wrote {path} and {folder / 'assets'}/*.png")


def view_command(
    folder: Annotated[Path, typer.Argument(help="The dataset folder.")],
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write.")],
    key: Annotated[str | None, typer.Option("--key", help="Sample key(s) to show, comma-separated.")] = None,
    n: Annotated[int, typer.Option("--n", min=1, help="Show the first N samples (when no --key).")] = 5,
) -> None:
    """Write a self-contained HTML page (frames embedded) showing trajectories turn by turn."""
    from cards.viewer import ViewerError, render_html

    folder = _dataset_folder(folder)
    keys = [k.strip() for k in key.split(",") if k.strip()] if key else None
    try:
        page = render_html(folder, keys=keys, n=n)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(page, encoding="utf-8")
    except (ViewerError, ValueError, OSError) as exc:
        raise _fail(_one_line(exc)) from None
    shown = page.count('<section class="sample"')
    typer.echo(f"wrote {out} ({shown} trajectories, {page.count('<img')} frames)")


def publish_command(
    folder: Annotated[Path, typer.Argument(help="The dataset folder (validated, with a generated card).")],
    repo: Annotated[str, typer.Option("--repo", help="The Hub dataset repo, ORG/NAME.")],
    private: Annotated[bool, typer.Option("--private", help="Create the repo private.")] = False,
    tag: Annotated[str | None, typer.Option("--tag", help="Tag the uploaded revision (e.g. v1.0).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would be uploaded; stop.")] = False,
) -> None:
    """Validate, upload to the Hub (token from HF_TOKEN or `hf auth login`), tag and verify."""
    from cards.publish import PublishError, publish

    try:
        publish(folder, repo, private=private, tag=tag, dry_run=dry_run, echo=typer.echo)
    except PublishError as exc:
        raise _fail(str(exc), exc.exit_code, exc.details) from None

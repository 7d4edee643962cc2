"""The installed package version, recorded in provenance and index.json."""

from __future__ import annotations

from importlib import metadata


def package_version() -> str:
    try:
        return metadata.version("videothinker-traj")
    except metadata.PackageNotFoundError:
        return "0+unknown"

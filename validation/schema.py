"""The versioned JSON Schema (draft 2020-12) of the trajectory record, generated from ``record.py``.

``python -m validation.schema`` rewrites the committed file; a test checks that it is in sync.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from validation.record import SCHEMA_VERSION, TrajectoryRecord

SCHEMA_DIR = Path(__file__).parent / "schemas"
SCHEMA_PATH = SCHEMA_DIR / f"trajectory-{SCHEMA_VERSION}.json"
SCHEMA_ID = f"https://huggingface.co/schemas/videothinker-traj/trajectory-{SCHEMA_VERSION}.json"


def generate_schema() -> dict[str, Any]:
    schema = TrajectoryRecord.model_json_schema(mode="validation")
    schema["properties"]["schema_version"]["const"] = SCHEMA_VERSION
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
        "required": sorted(set(schema.get("required", [])) | {"schema_version"}),
    }


@functools.cache
def load_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


def main() -> None:
    SCHEMA_DIR.mkdir(exist_ok=True)
    SCHEMA_PATH.write_text(json.dumps(generate_schema(), indent=2, sort_keys=True) + "\n")
    print(f"wrote {SCHEMA_PATH}")


if __name__ == "__main__":
    main()

"""Each benchmark's own metric over per-question results, in percent.

- MLVU: M-Avg, the unweighted mean of the per-task-type accuracies.
- Video-MME: accuracy overall, and by duration category (short / medium / long).
- LongVideoBench: accuracy overall, and by duration group (15 / 60 / 600 / 3600 s).
- LVBench: accuracy overall; by question type for information (a question counts toward each of its types).

A result is a dict with ``gold`` (letter or None), ``correct`` (bool) and the group fields of its item.
Results without a gold letter (hidden test answers) are not scored.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

Result = dict[str, Any]

METRIC_NAMES = {"mlvu": "m_avg", "videomme": "accuracy", "longvideobench": "accuracy", "lvbench": "accuracy"}
_DURATION_ORDER = {"short": 0, "medium": 1, "long": 2}


def scored(results: Iterable[Result]) -> list[Result]:
    return [r for r in results if r.get("gold")]


def accuracy(results: Iterable[Result]) -> float | None:
    """Percent of scored results that are correct, to 2 decimals (None when nothing is scored)."""
    value = _fraction(results)
    return None if value is None else round(100.0 * value, 2)


def _fraction(results: Iterable[Result]) -> float | None:
    rows = scored(results)
    return sum(bool(r.get("correct")) for r in rows) / len(rows) if rows else None


def by_group(results: Iterable[Result], keys: Callable[[Result], list[str]],
             order: Callable[[str], Any] = str) -> dict[str, dict[str, Any]]:
    """Accuracy and count per group; ``keys`` gives the groups a result belongs to (empty: none)."""
    groups: dict[str, list[Result]] = defaultdict(list)
    for r in scored(results):
        for key in keys(r):
            groups[key].append(r)
    return {k: {"accuracy": accuracy(groups[k]), "n": len(groups[k])} for k in sorted(groups, key=order)}


def _field(name: str) -> Callable[[Result], list[str]]:
    return lambda r: [str(r[name])] if r.get(name) not in (None, "") else []


def _types(r: Result) -> list[str]:
    return [t for t in str(r.get("task_type") or "").split("|") if t]


def _number(key: str) -> tuple[float, str]:
    try:
        return float(key), key
    except ValueError:
        return float("inf"), key


def benchmark_metric(bench: str, results: list[Result]) -> dict[str, Any]:
    """``{"metric", "score", "accuracy", "n", "groups": {...}}`` with the benchmark's own score."""
    overall = accuracy(results)
    out: dict[str, Any] = {"metric": METRIC_NAMES.get(bench, "accuracy"), "score": overall, "accuracy": overall,
                           "n": len(scored(results))}
    if bench == "mlvu":
        tasks = by_group(results, _field("task_type"))
        values = [_fraction(r for r in results if r.get("task_type") == task) for task in tasks]
        out["score"] = round(100.0 * sum(values) / len(values), 2) if values else None
        out["groups"] = {"task_type": tasks}
    elif bench == "videomme":
        out["groups"] = {"duration_category": by_group(results, _field("duration_category"),
                                                       lambda k: (_DURATION_ORDER.get(k, 9), k)),
                         "task_type": by_group(results, _field("task_type"))}
    elif bench == "longvideobench":
        out["groups"] = {"duration_group": by_group(results, _field("duration_group"), _number),
                         "task_type": by_group(results, _field("task_type"))}
    else:
        out["groups"] = {"task_type": by_group(results, _types)}
    return out

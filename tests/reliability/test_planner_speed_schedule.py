"""benchmarks/planner_speed.py times its variants alternating by round or back to back (``--schedule``)."""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "planner_speed.py"


def _load():
    spec = importlib.util.spec_from_file_location("planner_speed", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("interleaved", ["a", "b", "a", "b", "a", "b"]),  # warm-ups, then the rounds alternate
        ("blocked", ["a", "a", "a", "b", "b", "b"]),  # each variant's warm-up and rounds back to back
    ],
)
def test_schedule_orders_the_calls_and_times_every_round(schedule, expected):
    bench = _load()
    calls: list[str] = []
    times = bench.timed({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 2, schedule)
    assert calls == expected
    assert {name: len(t["wall"]) for name, t in times.items()} == {"a": 2, "b": 2}
    assert all(v >= 0 for t in times.values() for v in t["cpu"] + t["wall"])

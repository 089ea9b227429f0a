"""benchmarks/known_physics_speed.py times every juggler physics on real juggler states and prints its table."""

import importlib.util
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "known_physics_speed.py"


def test_it_times_every_physics(capsys):
    spec = importlib.util.spec_from_file_location("known_physics_speed", BENCHMARK)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--envs", "2", "--candidates", "4", "--rounds", "1"])
    rows = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines()[2:]}
    assert set(rows) == set(bench.PHYSICS)
    for path, (complete, adapt) in rows.items():
        assert float(complete) > 0
        assert (adapt == "nan") == (path.endswith(":BallContact"))  # BallContact does not adapt

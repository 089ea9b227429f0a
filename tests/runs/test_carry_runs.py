"""experiments/carry_runs.py: what unfinished work needs (an unfinished run's buffer and checkpoints, kept checkpoints
whose curve point is not evaluated) is parked small enough to commit, and restored on a new checkout."""

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from script_loading import script_module
from test_sweep_runner import FAKE, write_experiment  # the runner tests' fake experiment (tests/runs on sys.path)

from mbmeta.runs.experiment import load_experiment
from mbmeta.runs.sweep import Sweep, plan_jobs

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def carry():
    yield from script_module(ROOT / "experiments" / "carry_runs.py", "carry_runs")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_run(root: Path, name: str, files: dict[str, bytes], iteration: int, iterations: int | None,
             kept: tuple[int, ...] = (), group: str = "runs") -> Path:  # fmt: skip
    """A run directory after ``iteration`` of ``iterations`` (None: no config.json), committing ``iteration``'s
    checkpoint and keeping those of ``kept``, all read from ``files``."""
    run = root / "exp" / group / name
    for rel, data in files.items():
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_bytes(data)
    ckpt = lambda i: f"checkpoints/iteration_{i:03d}.ckpt"  # noqa: E731
    state = {"iteration": iteration, "episodes": 10 * iteration, "checkpoint": ckpt(iteration),
             "checkpoint_sha256": sha(files[ckpt(iteration)]),
             "kept": [{"iteration": i, "checkpoint": ckpt(i), "sha256": sha(files[ckpt(i)]), "episodes": 10 * i,
                       "transitions": 1000 * i} for i in kept]}  # fmt: skip
    (run / "state.json").write_text(json.dumps(state))
    if iterations is not None:
        (run / "config.json").write_text(json.dumps({"loop": {"iterations": iterations}}))
    return run


def parked_names(made, root):
    return sorted(str(p.relative_to(root / "exp" / "carry")) for p in made)


def test_an_unfinished_run_parks_its_buffer_and_checkpoints_and_restore_brings_them_back(carry, tmp_path):
    files = {"buffer.npz": b"buffer", "checkpoints/iteration_002.ckpt": b"c2", "checkpoints/iteration_003.ckpt": b"c3",
             "model.ckpt": b"c2-published-late"}  # fmt: skip
    run = make_run(tmp_path, "none-seed1", files, iteration=3, iterations=5, kept=(2,))
    made = carry.park(tmp_path)
    assert parked_names(made, tmp_path) == ["runs/none-seed1/buffer.npz.carried",
        "runs/none-seed1/checkpoints/iteration_002.ckpt.carried",
        "runs/none-seed1/checkpoints/iteration_003.ckpt.carried"]  # fmt: skip
    for rel in ("buffer.npz", "checkpoints/iteration_002.ckpt", "checkpoints/iteration_003.ckpt"):
        (run / rel).unlink()  # what the new machine lacks
    restored, kept = carry.restore(tmp_path)
    assert sorted(p.name for p in restored) == ["buffer.npz", "iteration_002.ckpt", "iteration_003.ckpt"]
    assert kept == [] and (run / "buffer.npz").read_bytes() == b"buffer"
    assert (run / "checkpoints/iteration_003.ckpt").read_bytes() == b"c3"
    assert not (tmp_path / "exp" / "carry").exists()


def test_a_checkpoint_that_is_the_committed_model_is_not_parked_but_rebuilt(carry, tmp_path):
    files = {"buffer.npz": b"b", "checkpoints/iteration_001.ckpt": b"final", "model.ckpt": b"final"}
    run = make_run(tmp_path, "context-seed0", files, iteration=1, iterations=2)
    assert parked_names(carry.park(tmp_path), tmp_path) == ["runs/context-seed0/buffer.npz.carried"]
    (run / "checkpoints/iteration_001.ckpt").unlink()
    (run / "buffer.npz").unlink()
    restored, _ = carry.restore(tmp_path)
    assert sorted(p.name for p in restored) == ["buffer.npz", "iteration_001.ckpt"]
    assert (run / "checkpoints/iteration_001.ckpt").read_bytes() == b"final"


def test_a_finished_run_outside_a_design_parks_its_kept_checkpoints_only(carry, tmp_path):
    files = {"buffer.npz": b"b", "checkpoints/iteration_001.ckpt": b"c1", "checkpoints/iteration_002.ckpt": b"c2",
             "model.ckpt": b"c2"}  # fmt: skip
    make_run(tmp_path, "none-10k-seed0", files, iteration=2, iterations=2, kept=(1, 2), group="pilot")
    assert parked_names(carry.park(tmp_path), tmp_path) == [
        "pilot/none-10k-seed0/checkpoints/iteration_001.ckpt.carried"
    ]


@pytest.fixture
def swept(tmp_path, calls, monkeypatch):
    """A fake sweep whose runs kept checkpoints 1 and 2 (the last the final model), every curve point evaluated."""
    monkeypatch.setenv("FAKE_KEEP", "1,2")
    monkeypatch.setenv("FAKE_KEEP_FINAL", "1")
    evaluate = {"episodes_per_task": 1, "num_envs": 2, "seeds": [0], "every_kept_checkpoint": True}
    experiment = load_experiment(write_experiment(tmp_path / "exp", evaluate=evaluate))
    Sweep(experiment, plan_jobs(experiment, methods=["none"]), command=FAKE, log=lambda line: None).run()
    for state in (tmp_path / "exp" / "runs").glob("*/state.json"):
        (state.parent / "config.json").write_text(json.dumps({"loop": {"iterations": 1}}))  # the fake's state says 1
    return experiment


def test_a_finished_run_parks_only_kept_checkpoints_whose_curve_point_is_not_evaluated(carry, swept, tmp_path):
    assert carry.park(tmp_path) == []  # everything evaluated: nothing to carry
    curve = swept.root / "results" / "none-seed1" / "curve" / "iteration_001"
    assert curve.is_dir()
    for path in sorted(curve.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    curve.rmdir()
    assert parked_names(carry.park(tmp_path), tmp_path) == ["runs/none-seed1/checkpoints/iteration_001.ckpt.carried"]


def test_restore_never_overwrites_a_runs_own_file(carry, tmp_path):
    files = {"buffer.npz": b"old", "checkpoints/iteration_001.ckpt": b"c1"}
    run = make_run(tmp_path, "context-seed0", files, iteration=1, iterations=3)
    carry.park(tmp_path)
    (run / "buffer.npz").write_bytes(b"newer")  # the run went on after parking
    restored, kept = carry.restore(tmp_path)
    assert restored == [] and run / "buffer.npz" in kept
    assert (run / "buffer.npz").read_bytes() == b"newer"


def test_parked_files_are_not_ignored_by_git(carry, tmp_path):
    # the reason for the suffix: the parked copies are committed, so no *.ckpt or buffer rule may rule them out
    make_run(tmp_path, "none-seed0", {"buffer.npz": b"b", "checkpoints/iteration_001.ckpt": b"c"}, 1, 2)
    made = carry.park(tmp_path)
    assert len(made) == 2
    for path in made:
        rel = Path("experiments") / path.relative_to(tmp_path)
        ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", str(rel)], cwd=ROOT)
        assert ignored.returncode == 1, f"{rel} is ignored"
    for rel in ("experiments/exp/runs/none-seed0/buffer.npz", "experiments/exp/runs/none-seed0/checkpoints/a.ckpt"):
        assert subprocess.run(["git", "check-ignore", "-q", "--no-index", rel], cwd=ROOT).returncode == 0


def test_help_exits_zero(carry, capsys):
    with pytest.raises(SystemExit) as exit_info:
        carry.main(["--help"])
    assert exit_info.value.code == 0 and "park" in capsys.readouterr().out

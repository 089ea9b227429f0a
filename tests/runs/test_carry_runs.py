"""experiments/carry_runs.py: a run's local files survive a checkout that keeps only untracked, non-ignored files."""

import subprocess
from pathlib import Path

import pytest
from script_loading import script_module

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def carry():
    yield from script_module(ROOT / "experiments" / "carry_runs.py", "carry_runs")


def make_run(root: Path, name: str, files: dict[str, bytes], group: str = "runs") -> Path:
    run = root / "exp" / group / name
    files = {"state.json": b"{}", **files}
    for rel, data in files.items():
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_bytes(data)
    return run


def test_park_then_restore_brings_back_what_a_new_checkout_lacks(carry, tmp_path):
    run = make_run(tmp_path, "none-seed1", {
        "buffer.npz": b"buffer", "checkpoints/iteration_004.ckpt": b"ckpt4", "state.json": b"{}"})  # fmt: skip
    carry.park(tmp_path)
    parked = tmp_path / "exp" / "carry" / "runs" / "none-seed1"
    assert (parked / "buffer.npz.carried").read_bytes() == b"buffer"
    assert (parked / "checkpoints" / "iteration_004.ckpt.carried").read_bytes() == b"ckpt4"
    assert not (parked / "state.json.carried").exists()  # tracked files travel with git
    (run / "buffer.npz").unlink()  # what the new machine lacks
    (run / "checkpoints" / "iteration_004.ckpt").unlink()
    restored, kept = carry.restore(tmp_path)
    assert sorted(p.name for p in restored) == ["buffer.npz", "iteration_004.ckpt"] and kept == []
    assert (run / "buffer.npz").read_bytes() == b"buffer"
    assert (run / "checkpoints" / "iteration_004.ckpt").read_bytes() == b"ckpt4"
    assert not (tmp_path / "exp" / "carry").exists()


def test_a_pilot_run_outside_runs_is_carried_too(carry, tmp_path):
    pilot = make_run(tmp_path, "none-10k-seed0", {"buffer.npz": b"b", "checkpoints/iteration_001.ckpt": b"c"}, "pilot")
    make_run(tmp_path, "notes", {}, "diagnostics")  # a directory with no local files: nothing to carry
    assert len(carry.park(tmp_path)) == 2
    (pilot / "checkpoints" / "iteration_001.ckpt").unlink()
    restored, _ = carry.restore(tmp_path)
    assert restored == [pilot / "checkpoints" / "iteration_001.ckpt"]


def test_restore_never_overwrites_a_runs_own_file(carry, tmp_path):
    run = make_run(tmp_path, "context-seed0", {"buffer.npz": b"old"})
    carry.park(tmp_path)
    (run / "buffer.npz").write_bytes(b"newer")  # the run went on after parking
    restored, kept = carry.restore(tmp_path)
    assert restored == [] and kept == [run / "buffer.npz"]
    assert (run / "buffer.npz").read_bytes() == b"newer"


def test_parked_files_are_not_ignored_by_git(carry, tmp_path):
    # the reason for parking: a new checkout receives untracked files unless .gitignore rules them out
    make_run(tmp_path, "none-seed0", {"buffer.npz": b"b", "checkpoints/iteration_001.ckpt": b"c"})
    for made in carry.park(tmp_path):
        rel = Path("experiments") / made.relative_to(tmp_path)
        ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", str(rel)], cwd=ROOT)
        assert ignored.returncode == 1, f"{rel} is ignored"
    for rel in ("experiments/exp/runs/none-seed0/buffer.npz", "experiments/exp/runs/none-seed0/checkpoints/a.ckpt"):
        assert subprocess.run(["git", "check-ignore", "-q", "--no-index", rel], cwd=ROOT).returncode == 0


def test_help_exits_zero(carry, capsys):
    with pytest.raises(SystemExit) as exit_info:
        carry.main(["--help"])
    assert exit_info.value.code == 0 and "park" in capsys.readouterr().out

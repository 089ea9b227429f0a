"""``loop.keep_checkpoints_every``: a run killed and resumed keeps exactly every k-th checkpoint, and keeping them
changes nothing else (same buffer and weights as a run that keeps none)."""

import json
import shutil
import signal

import pytest

from mbmeta.runs.loop import run_training
from mbmeta.runs.run_dir import file_sha256

from .conftest import EPISODE_STEPS, LOOP, tiny_settings, train_argv
from .runs import Train, assert_same_run, line_seen


@pytest.fixture(scope="module")
def reference_keeping_none(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("reference_keeping_none")
    with pytest.MonkeyPatch.context() as patch:  # module scope: restore WANDB_MODE for the tests that follow
        patch.setenv("WANDB_MODE", "disabled")
        run_training(**tiny_settings(run_dir, iterations=2))
    return run_dir


def test_kill_after_a_kept_iteration_then_resume_keeps_every_kth_checkpoint(tmp_path, reference_keeping_none):
    run_dir = tmp_path / "run"
    argv = train_argv(run_dir, iterations=2, keep_checkpoints_every=1)
    train = Train(argv, cwd=tmp_path)
    # iteration 2's checkpoint is written before its collection: killed there, it is uncommitted and redone
    reached = train.wait_for(line_seen("iteration 2/2: collecting"))
    assert reached and train.kill() == -signal.SIGKILL, train.output()
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["iteration_001.ckpt", "iteration_002.ckpt"]
    resumed = Train(argv, cwd=tmp_path)
    assert resumed.finish() == 0, resumed.output()

    state = json.loads((run_dir / "state.json").read_text())
    initial, per_iteration = LOOP["initial_episodes"], LOOP["episodes_per_iteration"]
    assert [(k["iteration"], k["episodes"], k["transitions"]) for k in state["kept"]] == [
        (1, initial, initial * EPISODE_STEPS),
        (2, initial + per_iteration, (initial + per_iteration) * EPISODE_STEPS),
    ]
    for kept in state["kept"]:
        assert file_sha256(run_dir / kept["checkpoint"]) == kept["sha256"]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["iteration_001.ckpt", "iteration_002.ckpt"]
    assert state["kept"][-1]["checkpoint"] == state["checkpoint"]
    assert json.loads((run_dir / "config.json").read_text())["loop"]["keep_checkpoints_every"] == 1
    assert_same_run(run_dir, reference_keeping_none)  # keeping checkpoints changes no result


def test_a_resume_with_another_keep_setting_is_refused(tmp_path, tiny_run):
    shutil.copytree(tiny_run, tmp_path / "run")
    with pytest.raises(ValueError, match=r"loop\.keep_checkpoints_every: 0 -> 2"):
        run_training(**tiny_settings(tmp_path / "run", iterations=2, keep_checkpoints_every=2))


def test_a_negative_keep_setting_is_refused():
    from mbmeta.runs.settings import LoopSettings

    with pytest.raises(ValueError, match=r"loop\.keep_checkpoints_every must be an int >= 0 .*got -1"):
        LoopSettings(keep_checkpoints_every=-1)

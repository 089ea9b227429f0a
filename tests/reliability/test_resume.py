"""`mbmeta train` killed at any moment and started again continues from the last completed iteration.

The killed-and-resumed run must end with exactly the buffer and weights of an uninterrupted run with the same
settings: no transition lost, none duplicated, and the same model.
"""

import json
import os
import shutil
import signal

import pytest

from mbmeta.data.atomic import atomic_write
from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.runs import run_dir as run_dir_module
from mbmeta.runs.loop import run_training
from mbmeta.runs.run_dir import LoopState

from .conftest import LOOP, tiny_settings, train_argv
from .runs import Train, assert_same_run, check_run, line_seen


@pytest.fixture(scope="module")
def reference_two_iterations(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("reference2")
    os.environ["WANDB_MODE"] = "disabled"
    run_training(**tiny_settings(run_dir, iterations=2))
    return run_dir


def _kill_then_resume(tmp_path, kill_points, iterations):
    """Start the command, SIGKILL it when each condition holds, restart it the same way; finally run to the end."""
    run_dir = tmp_path / "run"
    argv = train_argv(run_dir, iterations=iterations)
    for condition in kill_points:
        train = Train(argv, cwd=tmp_path)
        reached = train.wait_for(condition)
        code = train.kill()
        assert reached and code == -signal.SIGKILL, f"the run ended before the kill point:\n{train.output()}"
    train = Train(argv, cwd=tmp_path)
    code = train.finish()
    output = train.output()
    assert code == 0, output
    return run_dir, output


def test_kill_during_mpc_collection_then_resume(tmp_path, tiny_run):
    run_dir, output = _kill_then_resume(tmp_path, [line_seen("iteration 1/1: collecting")], iterations=1)
    assert "resuming" in output and "0 iterations done" in output
    check_run(run_dir, iterations=1)
    assert_same_run(run_dir, tiny_run)  # the session's uninterrupted in-process run with the same settings


@pytest.mark.slow
def test_kill_at_every_phase_then_resume(tmp_path, reference_two_iterations):
    buffer_file = lambda lines: (tmp_path / "run" / "buffer.npz").exists()  # noqa: E731
    kill_points = [
        buffer_file,  # just after the initial random data is on disk
        line_seen("iteration 1/2: fitting"),  # while Lightning starts / fits
        line_seen("Trainer.fit` stopped"),  # after fitting, before or while the checkpoint is written
        line_seen("iteration 2/2: collecting"),  # during MPC collection of the second iteration
    ]
    run_dir, _ = _kill_then_resume(tmp_path, kill_points, iterations=2)
    check_run(run_dir, iterations=2)
    assert_same_run(run_dir, reference_two_iterations)


def test_interrupted_commit_drops_the_extra_episodes(tmp_path, tiny_run, monkeypatch):
    # A kill between writing the buffer and committing the state leaves episodes the state does not count.
    real_save = LoopState.save

    def dying_save(self, path):
        if self.iteration == 1:
            raise KeyboardInterrupt("killed")
        real_save(self, path)

    monkeypatch.setattr(LoopState, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        run_training(**tiny_settings(tmp_path))
    on_disk = EpisodeBuffer.load(tmp_path / "buffer.npz")
    assert on_disk.num_episodes == LOOP["initial_episodes"] + LOOP["episodes_per_iteration"]
    assert json.loads((tmp_path / "state.json").read_text())["episodes"] == LOOP["initial_episodes"]
    monkeypatch.setattr(LoopState, "save", real_save)
    lines = []
    run_training(**{**tiny_settings(tmp_path), "log": lines.append})
    assert any("dropping 2 episodes" in line for line in lines)
    check_run(tmp_path, iterations=1)
    assert_same_run(tmp_path, tiny_run)


def test_kill_between_commit_and_publish_is_repaired(tmp_path, tiny_run, monkeypatch):
    # model.ckpt is refreshed from the committed iteration checkpoint on resume.
    monkeypatch.setattr(run_dir_module, "publish", lambda source, target: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        run_training(**tiny_settings(tmp_path))
    assert not (tmp_path / "model.ckpt").exists()
    monkeypatch.undo()
    run_training(**tiny_settings(tmp_path))
    check_run(tmp_path, iterations=1)
    assert_same_run(tmp_path, tiny_run)


def test_completed_run_is_not_redone_and_can_be_extended(tmp_path, tiny_run):
    shutil.copytree(tiny_run, tmp_path / "run")
    run_dir = tmp_path / "run"
    before = (run_dir / "buffer.npz").read_bytes()
    run_training(**tiny_settings(run_dir))
    assert (run_dir / "buffer.npz").read_bytes() == before
    run_training(**tiny_settings(run_dir, iterations=2))  # more iterations: allowed on resume
    check_run(run_dir, iterations=2)


def test_resume_with_different_settings_is_refused(tmp_path, tiny_run):
    shutil.copytree(tiny_run, tmp_path / "run")
    settings = tiny_settings(tmp_path / "run", seed=99)
    settings["model"]["hidden_sizes"] = [32]
    with pytest.raises(ValueError, match=r"different settings .*loop\.seed: 3 -> 99.*model\.hidden_sizes"):
        run_training(**settings)


def test_settings_added_later_at_their_default_do_not_block_a_resume(tmp_path, tiny_run):
    import json

    shutil.copytree(tiny_run, tmp_path / "run")
    config_path = tmp_path / "run" / "config.json"
    config = json.loads(config_path.read_text())
    del config["agent"]["disagreement_penalty"]  # as written by a version before the setting existed
    config_path.write_text(json.dumps(config))
    run_training(**tiny_settings(tmp_path / "run", iterations=2))  # resumes at the default
    check_run(tmp_path / "run", iterations=2)
    config_path.write_text(json.dumps(config))
    settings = tiny_settings(tmp_path / "run", iterations=2)
    settings["agent"].disagreement_penalty = 0.5  # not the default: a real change
    with pytest.raises(ValueError, match=r"agent\.disagreement_penalty: None -> 0\.5"):
        run_training(**settings)


def test_resume_with_a_corrupt_buffer_names_the_file_and_keeps_it(tmp_path, tiny_run):
    shutil.copytree(tiny_run, tmp_path / "run")
    buffer = tmp_path / "run" / "buffer.npz"
    damaged = buffer.read_bytes()[:-200]
    buffer.write_bytes(damaged)
    with pytest.raises(ValueError, match=r"buffer\.npz.*(corrupt|truncated)"):
        run_training(**tiny_settings(tmp_path / "run"))
    assert buffer.read_bytes() == damaged  # never overwritten: the user can still try to recover it


def test_resume_with_a_corrupt_checkpoint_names_the_file_and_keeps_it(tmp_path, tiny_run):
    shutil.copytree(tiny_run, tmp_path / "run", copy_function=shutil.copyfile)
    ckpt = tmp_path / "run" / "checkpoints" / "iteration_001.ckpt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    with pytest.raises(ValueError, match=r"iteration_001\.ckpt.*(truncated or corrupt|SHA-256 mismatch)"):
        run_training(**tiny_settings(tmp_path / "run", iterations=2))
    assert len(ckpt.read_bytes()) == 1000


def test_resume_with_a_corrupt_state_names_the_file(tmp_path, tiny_run):
    shutil.copytree(tiny_run, tmp_path / "run")
    (tmp_path / "run" / "state.json").write_text('{"iteration": 1, "epis')
    with pytest.raises(ValueError, match=r"state\.json.*corrupt"):
        run_training(**tiny_settings(tmp_path / "run"))
    (tmp_path / "run" / "state.json").write_text('{"iteration": -1, "episodes": 5}')
    with pytest.raises(ValueError, match=r"state\.json.*iteration is -1"):
        run_training(**tiny_settings(tmp_path / "run"))


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("old")

    def failing(f):
        f.write(b"half of the new con")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, failing)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_second_process_on_the_same_run_dir_is_refused(tmp_path):
    from mbmeta.runs.run_dir import RunInUseError, RunLock

    (tmp_path / "run").mkdir()
    with RunLock(tmp_path / "run"):
        with pytest.raises(RunInUseError, match="in use by another mbmeta process"):
            run_training(**tiny_settings(tmp_path / "run"))
    run_training(**tiny_settings(tmp_path / "run"))  # released: runs


def test_temporary_files_of_a_killed_writer_are_removed_on_resume(tmp_path, tiny_run):
    shutil.copytree(tiny_run, tmp_path / "run")
    stale = [tmp_path / "run" / ".state.json.abc.tmp", tmp_path / "run" / "checkpoints" / ".iteration_002.ckpt.x.tmp"]
    for path in stale:
        path.write_bytes(b"partial")
    run_training(**tiny_settings(tmp_path / "run"))
    assert not any(path.exists() for path in stale)

"""`runs/run_dir.py`: the run directory's commit order, resume, integrity errors, temporaries, lock and W&B ids."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.runs import run_dir as run_dir_module
from mbmeta.runs.run_dir import LoopState, RunDirectory, RunInUseError, file_sha256, wandb_resume_options


def buffer_of(episodes: int) -> EpisodeBuffer:
    buffer = EpisodeBuffer()
    for e in range(episodes):
        obs = np.full((5, 2), float(e), np.float32)
        done = np.zeros(4, bool)
        done[-1] = True
        buffer.add_episode(obs[:-1], np.zeros((4, 1)), np.ones(4), obs[1:], ~done & done, done, {"mass": 1.0 + e})
    return buffer


@contextmanager
def started(path: Path) -> Iterator[RunDirectory]:
    """A locked run directory whose run has started (settings and an empty state recorded)."""
    with RunDirectory(path) as run:
        run.start({"loop": {"seed": 0}})
        yield run


def fake_checkpoint(run: RunDirectory, iteration: int) -> Path:
    path = run.iteration_checkpoint(iteration)
    path.write_bytes(f"weights of iteration {iteration}".encode())
    return path


def test_commit_writes_the_buffer_then_the_state_then_publishes(tmp_path, monkeypatch):
    order = []
    for owner, name, label in [
        (EpisodeBuffer, "save", "buffer"),
        (LoopState, "save", "state"),
        (run_dir_module, "publish", "publish"),
    ]:
        real = getattr(owner, name)
        monkeypatch.setattr(owner, name, lambda *a, real=real, label=label: (order.append(label), real(*a))[1])
    with started(tmp_path / "run") as run:
        order.clear()  # starting wrote the first, empty state
        committed = fake_checkpoint(run, 1)
        stale = fake_checkpoint(run, 2)  # e.g. left by an iteration that did not complete
        state = run.commit(buffer_of(3), iteration=1, checkpoint=committed)
    assert order == ["buffer", "state", "publish"]
    assert (state.iteration, state.episodes, state.checkpoint) == (1, 3, "checkpoints/iteration_001.ckpt")
    assert state.buffer_digest == buffer_of(3).digest() and state.checkpoint_sha256 == file_sha256(committed)
    assert LoopState.load(run.state_path) == state
    assert run.checkpoint_path.read_bytes() == b"weights of iteration 1"
    assert not stale.exists()
    assert EpisodeBuffer.load(run.buffer_path).num_episodes == 3


def test_a_commit_before_the_first_fit_publishes_nothing(tmp_path):
    with started(tmp_path / "run") as run:
        state = run.commit(buffer_of(2), iteration=0)
    assert (state.iteration, state.episodes, state.checkpoint, state.checkpoint_sha256) == (0, 2, None, None)
    assert not run.checkpoint_path.exists()


def test_resume_drops_episodes_of_an_uncommitted_step(tmp_path):
    lines = []
    with started(tmp_path / "run") as run:
        run.commit(buffer_of(2), iteration=0)
        buffer_of(3).save(run.buffer_path)  # a step appended an episode, then died before its commit
        buffer, checkpoint = run.resume(run.load_state(), lines.append)
    assert buffer.num_episodes == 2 and checkpoint is None
    assert np.array_equal(buffer.field("obs"), buffer_of(2).field("obs"))
    assert lines == ["dropping 1 episodes of an interrupted iteration"]


def test_resume_republishes_the_committed_checkpoint_and_prunes_the_others(tmp_path):
    with started(tmp_path / "run") as run:
        committed = fake_checkpoint(run, 1)
        run.commit(buffer_of(2), iteration=1, checkpoint=committed)
        run.checkpoint_path.unlink()  # killed between the commit and the publish
        uncommitted = fake_checkpoint(run, 2)
        buffer, checkpoint = run.resume(run.load_state(), lambda line: None)
    assert checkpoint == committed and buffer.num_episodes == 2
    assert run.checkpoint_path.read_bytes() == committed.read_bytes()
    assert not uncommitted.exists()


def test_resume_with_a_missing_committed_checkpoint_is_a_clear_error(tmp_path):
    with started(tmp_path / "run") as run:
        committed = fake_checkpoint(run, 1)
        run.commit(buffer_of(2), iteration=1, checkpoint=committed)
        committed.unlink()
        with pytest.raises(ValueError, match=r"records 1 completed iterations but their checkpoint .*iteration_001"):
            run.resume(run.load_state(), lambda line: None)


def test_resume_with_fewer_episodes_than_committed_is_a_clear_error(tmp_path):
    with started(tmp_path / "run") as run:
        run.commit(buffer_of(3), iteration=0)
        buffer_of(1).save(run.buffer_path)
        with pytest.raises(ValueError, match=r"buffer\.npz holds 1 episodes but the loop state .* records 3"):
            run.resume(run.load_state(), lambda line: None)


def test_entering_removes_temporaries_and_keeps_everything_else(tmp_path):
    run_path = tmp_path / "run"
    (run_path / "checkpoints").mkdir(parents=True)
    stale = [run_path / ".state.json.abc.tmp", run_path / "checkpoints" / ".iteration_002.ckpt.x.tmp"]
    kept = [run_path / "notes.txt", run_path / "checkpoints" / "iteration_001.ckpt"]
    for path in stale + kept:
        path.write_bytes(b"content")
    with RunDirectory(run_path):
        assert not any(path.exists() for path in stale)
        assert all(path.read_bytes() == b"content" for path in kept)


def test_the_lock_refuses_a_second_holder_until_the_first_leaves(tmp_path):
    with RunDirectory(tmp_path / "run"):
        with pytest.raises(RunInUseError, match="in use by another mbmeta process"):
            RunDirectory(tmp_path / "run").__enter__()
    with RunDirectory(tmp_path / "run"):  # released on exit
        pass


def test_an_empty_directory_holds_a_fresh_state_and_a_saved_state_round_trips(tmp_path):
    with RunDirectory(tmp_path / "run") as run:
        assert run.load_state() == LoopState()
    with pytest.raises(FileNotFoundError, match=r"loop state file '.*state\.json' does not exist"):
        LoopState.load(tmp_path / "state.json")
    state = LoopState(2, 17, "checkpoints/iteration_002.ckpt", buffer_digest="ab", checkpoint_sha256="cd")
    state.save(tmp_path / "state.json")
    assert LoopState.load(tmp_path / "state.json") == state


@pytest.mark.parametrize(
    "content, message",
    [
        (b'{"iteration": 1, "epis', r" \(.*\); restore it from a backup"),
        (b"\xff\xfe\x00", r" \(.*decode.*\)"),
        (b"[1, 2]", r" \(.*mapping.*\)"),
        (b'{"iteration": 1, "episodes": 2, "surprise": 3}', r" \(.*surprise.*\)"),
        (b'{"iteration": -1, "episodes": 5}', ": iteration is -1, not an int >= 0"),
        (b'{"iteration": 1, "episodes": "5"}', ": episodes is '5', not an int >= 0"),
        (b'{"iteration": true, "episodes": 5}', ": iteration is True, not an int >= 0"),
        (b'{"iteration": 1.5, "episodes": 5}', ": iteration is 1.5, not an int >= 0"),
        (b'{"iteration": 1, "episodes": 5, "checkpoint": 7}', ": checkpoint is 7"),
        (b'{"iteration": 1, "episodes": 5, "buffer_digest": [1]}', r": buffer_digest is \[1\]"),
    ],
    ids=[
        "truncated",
        "not-utf8",
        "not-an-object",
        "unknown-key",
        "negative",
        "string",
        "bool",
        "float",
        "checkpoint",
        "digest",
    ],  # fmt: skip
)
def test_a_corrupt_loop_state_is_an_error_naming_the_file(tmp_path, content, message):
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=rf"loop state file '.*state\.json' is corrupt{message}"):
        LoopState.load(path)


def test_wandb_options_resume_the_same_run_online_and_group_offline_starts(tmp_path):
    online, again = wandb_resume_options(tmp_path, "online"), wandb_resume_options(tmp_path, "online")
    assert online == again and online["resume"] == "allow" and online["id"] == (tmp_path / "wandb_id").read_text()
    offline = wandb_resume_options(tmp_path, "offline")
    assert "id" not in offline and offline["group"] == online["group"]
    assert offline["group"] == f"{tmp_path.name}-{online['id']}"


def test_wandb_mode_comes_from_the_environment_and_a_damaged_id_is_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "online")
    (tmp_path / "wandb_id").write_text("not/an id\n")
    options = wandb_resume_options(tmp_path)
    assert options["resume"] == "allow" and options["id"].isalnum() and len(options["id"]) == 16
    assert (tmp_path / "wandb_id").read_text() == options["id"]
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert "id" not in wandb_resume_options(tmp_path)


def test_a_kept_checkpoint_is_recorded_with_what_it_was_fitted_on_and_never_pruned(tmp_path):
    with started(tmp_path / "run") as run:
        run.commit(buffer_of(2), iteration=0)
        first = fake_checkpoint(run, 1)
        state = run.commit(buffer_of(3), iteration=1, checkpoint=first, keep=True)
        second = fake_checkpoint(run, 2)
        run.commit(buffer_of(4), iteration=2, checkpoint=second)  # not kept: pruned by the next commit
        third = fake_checkpoint(run, 3)
        final = run.commit(buffer_of(5), iteration=3, checkpoint=third, keep=True)
    (kept,) = state.kept
    # fitted on the buffer of the previous commit: 2 episodes of 4 transitions
    assert (kept.iteration, kept.episodes, kept.transitions) == (1, 2, 8)
    assert kept.checkpoint == "checkpoints/iteration_001.ckpt"
    assert kept.sha256 == file_sha256(first)
    assert [(k.iteration, k.episodes, k.transitions) for k in final.kept] == [(1, 2, 8), (3, 4, 16)]
    assert sorted(p.name for p in run.checkpoint_dir.iterdir()) == ["iteration_001.ckpt", "iteration_003.ckpt"]
    assert LoopState.load(run.state_path) == final


def test_resume_keeps_the_kept_checkpoints_and_drops_an_uncommitted_one(tmp_path):
    with started(tmp_path / "run") as run:
        run.commit(buffer_of(2), iteration=0)
        run.commit(buffer_of(3), iteration=1, checkpoint=fake_checkpoint(run, 1), keep=True)
        run.commit(buffer_of(4), iteration=2, checkpoint=fake_checkpoint(run, 2))
        uncommitted = fake_checkpoint(run, 3)  # fitted, then killed before its commit
        run.resume(run.load_state(), lambda line: None)
    assert sorted(p.name for p in run.checkpoint_dir.iterdir()) == ["iteration_001.ckpt", "iteration_002.ckpt"]
    assert not uncommitted.exists()


def test_resume_without_the_buffer_names_it_and_touches_nothing(tmp_path):
    # a checkout on another machine has the run's state.json but not its buffer (buffers are not committed)
    with started(tmp_path / "run") as run:
        run.commit(buffer_of(2), iteration=1, checkpoint=fake_checkpoint(run, 1))
        run.buffer_path.unlink()
        before = {p: p.read_bytes() for p in run.path.rglob("*") if p.is_file()}
        with pytest.raises(
            ValueError, match=r"records 2 collected episodes but the replay buffer .*buffer\.npz is missing"
        ):
            run.resume(run.load_state(), lambda line: None)
        assert {p: p.read_bytes() for p in run.path.rglob("*") if p.is_file()} == before


def test_a_state_without_kept_checkpoints_is_written_as_before(tmp_path):
    with started(tmp_path / "run") as run:
        run.commit(buffer_of(2), iteration=1, checkpoint=fake_checkpoint(run, 1))
    assert set(json.loads(run.state_path.read_text())) == {
        "iteration", "episodes", "checkpoint", "buffer_digest", "checkpoint_sha256"
    }  # fmt: skip


@pytest.mark.parametrize(
    "kept, message",
    [
        ("3", "kept is 3, not a list"),
        ('[{"iteration": 1}]', "kept checkpoint .*missing"),
        ('[{"iteration": -1, "checkpoint": "c", "sha256": "s", "episodes": 1, "transitions": 2}]', "iteration is -1"),
        ('[{"iteration": 1, "checkpoint": 5, "sha256": "s", "episodes": 1, "transitions": 2}]', "checkpoint is 5"),
    ],
    ids=["not-a-list", "fields-missing", "negative", "path-not-a-string"],
)
def test_a_corrupt_kept_list_is_an_error_naming_the_file(tmp_path, kept, message):
    path = tmp_path / "state.json"
    path.write_text(f'{{"iteration": 1, "episodes": 2, "kept": {kept}}}')
    with pytest.raises(ValueError, match=rf"loop state file '.*state\.json' is corrupt.*{message}"):
        LoopState.load(path)


def test_a_kept_checkpoint_outside_the_run_directory_is_refused(tmp_path):
    with started(tmp_path / "run") as run:
        kept = '[{"iteration": 1, "checkpoint": "../x.ckpt", "sha256": "s", "episodes": 1, "transitions": 2}]'
        run.state_path.write_text(f'{{"iteration": 0, "episodes": 0, "kept": {kept}}}')
        with pytest.raises(ValueError, match=r"checkpoint '\.\./x\.ckpt' lies outside the run directory"):
            run.load_state()

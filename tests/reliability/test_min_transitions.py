"""``loop.min_transitions``: every collection of the loop meets a budget in environment steps, on a family whose
failures end episodes early, with the episodes under way finished or dropped (``loop.under_way``, CaDM's sampler
rule); the settings check; what a checkpoint was fitted on stays known."""

import json

import pytest

import mbmeta.runs.loop as loop_module
from mbmeta.control.collection import collect_episodes
from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.runs.loop import run_training
from mbmeta.runs.settings import LoopSettings
from mbmeta.runs.training_data import training_episodes

from .conftest import tiny_settings

BUDGET = 120  # CaDM's CartPole collects 10 × 200; early random pushes fail after ~10-40 steps


@pytest.fixture(scope="module")
def cartpole_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("min_transitions") / "run"
    settings = tiny_settings(
        run_dir, family="cadm_cartpole", initial_episodes=2, episodes_per_iteration=2, min_transitions=BUDGET,
        keep_checkpoints_every=1,
    )  # fmt: skip
    lines: list[str] = []
    run_training(**{**settings, "log": lines.append})
    return run_dir, lines


def test_each_collection_holds_at_least_the_budget_of_whole_episodes(cartpole_run):
    run_dir, lines = cartpole_run
    buffer = EpisodeBuffer.load(run_dir / "buffer.npz")
    state = json.loads((run_dir / "state.json").read_text())
    initial = state["kept"][0]  # iteration 1's model was fitted on the initial collection alone
    assert initial["transitions"] >= BUDGET and initial["episodes"] > 2  # random pushes: many short episodes
    assert buffer.num_transitions - initial["transitions"] >= BUDGET  # the MPC iteration's collection too
    assert all(
        buffer.episode(e)["terminated"][-1] or buffer.episode(e)["truncated"][-1] for e in range(buffer.num_episodes)
    )
    assert any("(more until 120 transitions)" in line for line in lines)


def test_what_a_checkpoint_was_fitted_on_is_known_from_kept_checkpoints_only(cartpole_run):
    run_dir, _ = cartpole_run
    state = json.loads((run_dir / "state.json").read_text())
    assert training_episodes(run_dir / "checkpoints" / "iteration_001.ckpt") == (run_dir, state["kept"][0]["episodes"])
    config = json.loads((run_dir / "config.json").read_text())
    assert config["loop"]["min_transitions"] == BUDGET
    config["loop"]["keep_checkpoints_every"] = 0  # as if the run kept none: model.ckpt alone says nothing
    state["kept"] = []
    probe = run_dir.parent / "probe"
    probe.mkdir()
    for name in ("buffer.npz", "model.ckpt"):
        (probe / name).write_bytes((run_dir / name).read_bytes())
    (probe / "config.json").write_text(json.dumps(config))
    (probe / "state.json").write_text(json.dumps(state))
    with pytest.raises(ValueError, match="varying number of episodes per iteration"):
        training_episodes(probe / "model.ckpt")


@pytest.fixture(scope="module")
def cartpole_drop_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("drop_rule") / "run"
    settings = tiny_settings(
        run_dir, family="cadm_cartpole", initial_episodes=2, episodes_per_iteration=2, min_transitions=BUDGET,
        under_way="drop", keep_checkpoints_every=1,
    )  # fmt: skip
    lines: list[str] = []
    rules: list[str] = []

    def spy(*args, **kwargs):  # the real collection, recording which rule the loop asked for
        rules.append(kwargs["under_way"])
        return collect_episodes(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loop_module, "collect_episodes", spy)
        run_training(**{**settings, "log": lines.append})
    assert rules == ["drop", "drop"]  # the random collection and the MPC iteration's
    return run_dir, lines


def test_the_drop_rule_keeps_finished_episodes_only_and_stops_at_the_budget(cartpole_drop_run):
    run_dir, lines = cartpole_drop_run
    buffer = EpisodeBuffer.load(run_dir / "buffer.npz")
    state = json.loads((run_dir / "state.json").read_text())
    lengths = buffer.episode_lengths
    split = state["kept"][0]["episodes"]  # the initial collection's episodes come first
    for collection in (lengths[:split], lengths[split:]):
        assert collection.sum() >= BUDGET
        # the budget was met on the step the last episodes ended: before them (at most one per environment,
        # num_envs = 2), the finished episodes held less; the episodes under way then are not in the buffer
        assert collection[:-2].sum() < BUDGET
    assert all(
        buffer.episode(e)["terminated"][-1] or buffer.episode(e)["truncated"][-1] for e in range(buffer.num_episodes)
    )
    assert json.loads((run_dir / "config.json").read_text())["loop"]["under_way"] == "drop"
    assert any("(more until 120 transitions, dropping the episodes under way)" in line for line in lines)


def test_the_drop_rule_needs_a_budget_in_steps():
    with pytest.raises(ValueError, match="loop.under_way must be 'finish' or 'drop', got 'keep'"):
        LoopSettings(min_transitions=10, under_way="keep")
    with pytest.raises(ValueError, match="loop.under_way 'drop' ends a collection by its budget in steps"):
        LoopSettings(under_way="drop")


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_a_bad_budget_is_refused(bad):
    with pytest.raises(ValueError, match="loop.min_transitions must be an int >= 0"):
        LoopSettings(min_transitions=bad)

"""``agent.bound_latent`` end to end: ``mbmeta train`` clamps with the range of each fit's data, ``mbmeta evaluate``
reads a checkpoint's training episodes back from its run directory, and what cannot be bounded is refused in a line."""

import json
import shutil

import pytest

from mbmeta.cli import main
from mbmeta.control.latent_range import measure_latent_range
from mbmeta.control.settings import AgentSettings
from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.runs.loop import run_training
from mbmeta.runs.training_data import training_episodes, training_latent_range
from mbmeta.training.checkpoint import load_module

from .conftest import AGENT, LOOP, tiny_settings


@pytest.fixture(scope="module")
def bounded_run(tmp_path_factory):
    """Two iterations of a tiny ``context`` run that plans with its bounded code, keeping every checkpoint."""
    run_dir = tmp_path_factory.mktemp("bounded_run")
    settings = tiny_settings(run_dir, iterations=2, keep_checkpoints_every=1)
    settings["agent"] = AgentSettings.from_config({**AGENT, "bound_latent": True})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_MODE", "disabled")
        run_training(**settings)
    return run_dir


def test_each_checkpoint_maps_to_the_episodes_it_was_fitted_on(bounded_run):
    initial, per_iteration = LOOP["initial_episodes"], LOOP["episodes_per_iteration"]
    assert training_episodes(bounded_run / "checkpoints" / "iteration_001.ckpt") == (bounded_run, initial)
    assert training_episodes(bounded_run / "checkpoints" / "iteration_002.ckpt") == (
        bounded_run,
        initial + per_iteration,
    )
    assert training_episodes(bounded_run / "model.ckpt") == (bounded_run, initial + per_iteration)
    config = json.loads((bounded_run / "config.json").read_text())
    assert config["agent"]["bound_latent"] is True


def test_the_range_of_a_checkpoint_is_measured_on_its_own_episodes_only(bounded_run):
    first = bounded_run / "checkpoints" / "iteration_001.ckpt"
    model = load_module(first).dynamics
    measured = training_latent_range(first, model, AGENT["context_length"])
    buffer = EpisodeBuffer.load(bounded_run / "buffer.npz")
    expected = measure_latent_range(model, buffer.first(LOOP["initial_episodes"]), AGENT["context_length"])
    everything = measure_latent_range(model, buffer, AGENT["context_length"])
    assert measured.as_dict() == expected.as_dict()
    assert measured.as_dict() != everything.as_dict()  # the later episodes would have widened it


def test_a_final_model_of_the_tiny_run_without_kept_checkpoints_maps_too(tiny_run):
    initial = LOOP["initial_episodes"]
    assert training_episodes(tiny_run / "model.ckpt") == (tiny_run, initial)  # 1 iteration: fitted on iteration 0


def test_a_checkpoint_that_is_not_the_runs_own_is_refused(tmp_path, bounded_run, tiny_run):
    run = tmp_path / "run"
    shutil.copytree(bounded_run, run)
    with (run / "model.ckpt").open("ab") as file:  # another file in the model's place
        file.write(b"changed")
    with pytest.raises(ValueError, match="is none of the committed checkpoints of"):
        training_episodes(run / "model.ckpt")
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(tiny_run / "model.ckpt", alone / "model.ckpt")
    with pytest.raises(ValueError, match="no run directory with state.json and buffer.npz"):
        training_episodes(alone / "model.ckpt")


def test_evaluate_plans_with_the_bounded_code_and_records_it(tmp_path, bounded_run, monkeypatch):
    # offline, as the suite's other in-process evaluations: W&B's process-wide setup keeps the first mode it sees
    monkeypatch.setenv("WANDB_MODE", "offline")
    common = ["--ckpt", str(bounded_run / "model.ckpt"), "--tasks", "1", "--episodes_per_task", "1"]
    common += ["--num_envs", "1", "--env_kwargs", '{"max_episode_steps": 20}']
    assert main(["evaluate", *common, "--agent.bound_latent", "true", "--out", str(tmp_path / "bounded")]) == 0
    results = json.loads((tmp_path / "bounded" / "results.json").read_text())
    assert results["agent"]["bound_latent"] is True and len(results["episodes"]) == 1
    model = load_module(bounded_run / "model.ckpt").dynamics
    expected = training_latent_range(bounded_run / "model.ckpt", model, AGENT["context_length"]).as_dict()
    assert results["latent_range"] == {"context": expected}
    # evaluate plans as the run did unless told otherwise: the run recorded bound_latent true
    assert main(["evaluate", *common, "--out", str(tmp_path / "default")]) == 0
    assert json.loads((tmp_path / "default" / "results.json").read_text())["latent_range"] == {"context": expected}
    assert main(["evaluate", *common, "--agent.bound_latent", "false", "--out", str(tmp_path / "free")]) == 0
    free = json.loads((tmp_path / "free" / "results.json").read_text())
    assert free["agent"]["bound_latent"] is False and "latent_range" not in free


def test_a_model_without_a_code_cannot_be_bounded(tmp_path, bounded_run):
    run = tmp_path / "none"
    settings = tiny_settings(run)
    settings["model"]["adaptation"] = "none"
    settings["agent"] = AgentSettings.from_config({**AGENT, "bound_latent": True})
    with pytest.raises(ValueError, match="adaptation 'none' has no task code z to bound"):
        run_training(**settings)


def test_the_protocol_needs_a_way_to_read_each_models_range(tmp_path):
    from mbmeta.envs import get_family
    from mbmeta.evaluation.protocol import run_protocol

    agent = AgentSettings.from_config({**AGENT, "bound_latent": True})
    with pytest.raises(ValueError, match="agent.bound_latent needs latent_range_of"):
        run_protocol(["model.ckpt"], None, get_family("cadm_pendulum"), agent, episodes=1, num_envs=1, seed=0,
                     out=tmp_path)  # fmt: skip

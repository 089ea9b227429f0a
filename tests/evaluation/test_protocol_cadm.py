"""CaDM's evaluation protocol (mbmeta.evaluation.protocol): conditions, task draws, scores and their files."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch

from mbmeta.control.settings import AgentSettings
from mbmeta.envs import get_family
from mbmeta.evaluation.episodes import EpisodeRecord
from mbmeta.evaluation.protocol import (
    ProtocolEpisode,
    condition_descriptions,
    evaluate_protocol,
    format_protocol_table,
    protocol_conditions,
    protocol_scores,
    protocol_tasks,
    summarise_protocol,
    write_protocol,
)

PENDULUM = get_family("cadm_pendulum")


def episode(method: str, condition: str, group: str, ret: float) -> ProtocolEpisode:
    return ProtocolEpisode(condition, group, EpisodeRecord(method, 0, {"mass": 1.0}, 0, ret, 200, False))


def synthetic() -> list[ProtocolEpisode]:
    groups = {"train": "train", "c0": "extreme", "c1": "moderate", "c2": "moderate", "c3": "extreme"}
    returns = {
        "train": [-100.0, -120.0],
        "c0": [-900.0, -1100.0],
        "c1": [-300.0, -500.0],
        "c2": [-600.0, -600.0],
        "c3": [-1500.0, -1300.0],
    }
    out = [episode("none", name, groups[name], r) for name, rs in returns.items() for r in rs]
    return out + [episode("context", "c1", "moderate", -50.0), episode("context", "c1", "moderate", -70.0)]


def test_conditions_are_the_train_set_then_cadms_test_sets():
    conditions = protocol_conditions(PENDULUM)
    assert [c.name for c in conditions] == ["train", "c0", "c1", "c2", "c3"]
    assert conditions[0].regions == PENDULUM.train and conditions[0].group == "train"


def test_a_family_without_conditions_is_refused_naming_those_with():
    with pytest.raises(ValueError, match="cadm_pendulum") as err:
        protocol_conditions(get_family("pendulum"))
    assert "'pendulum'" in str(err.value)


def test_tasks_are_drawn_from_each_condition_and_repeat_with_the_seed():
    tasks = protocol_tasks(PENDULUM, 40, seed=3)
    assert list(tasks) == ["train", "c0", "c1", "c2", "c3"]
    for name, drawn in tasks.items():
        assert len(drawn) == 40
        allowed = PENDULUM.regions(name)[0]
        assert {t["mass"] for t in drawn} == set(allowed["mass"].values)  # every value of the set is drawn
        assert {t["length"] for t in drawn} == set(allowed["length"].values)
    again = protocol_tasks(PENDULUM, 40, seed=3)
    assert again == tasks
    assert protocol_tasks(PENDULUM, 40, seed=4) != tasks
    with pytest.raises(ValueError, match="episodes"):
        protocol_tasks(PENDULUM, 0, seed=0)


def test_scores_per_condition_and_the_group_averages():
    scores = {(s.method, s.name): s for s in summarise_protocol(synthetic())}
    c1 = scores[("none", "c1")]
    assert (c1.mean, c1.n, c1.group) == (-400.0, 2, "moderate")
    assert c1.stderr == pytest.approx(np.std([-300.0, -500.0], ddof=1) / math.sqrt(2))
    assert scores[("none", "c2")].stderr == 0.0
    moderate, extreme, test = scores[("none", "moderate")], scores[("none", "extreme")], scores[("none", "test")]
    assert moderate.mean == pytest.approx((-400.0 - 600.0) / 2) and moderate.n == 4
    assert moderate.stderr == pytest.approx(math.sqrt(c1.stderr**2 + 0.0) / 2)
    assert extreme.mean == pytest.approx((-1000.0 - 1400.0) / 2)
    assert test.mean == pytest.approx((-1000.0 - 400.0 - 600.0 - 1400.0) / 4) and test.n == 8
    assert scores[("none", "train")].mean == -110.0  # the train set is reported, never averaged into test
    # a method evaluated on one condition only gets that condition's averages and no others
    assert scores[("context", "moderate")].mean == -60.0 and ("context", "extreme") not in scores
    assert [s.name for s in summarise_protocol(synthetic()) if s.method == "none"] == [
        "train", "c0", "c1", "c2", "c3", "moderate", "extreme", "test"
    ]  # fmt: skip


def test_scores_of_the_stored_episodes_equal_those_of_the_run(tmp_path):
    episodes = synthetic()
    json_path, _ = write_protocol(episodes, summarise_protocol(episodes), tmp_path, {})
    assert protocol_scores(json.loads(json_path.read_text())["episodes"]) == summarise_protocol(episodes)


def test_a_single_episode_has_no_standard_error():
    (score, *_) = summarise_protocol([episode("none", "c1", "moderate", -1.0)])
    assert score.n == 1 and math.isnan(score.stderr)


def test_table_and_files(tmp_path):
    episodes = synthetic()
    scores = summarise_protocol(episodes)
    table = format_protocol_table(scores, condition_descriptions(PENDULUM))
    lines = table.splitlines()
    assert lines[0] == "| condition | group | tasks | none | context |"
    assert "| c1 | moderate | mass {0.5, 0.7}, length {1.3, 1.5} | -400.0 ± 100.0 (2) | -60.0 ± 10.0 (2) |" in lines
    assert any(
        line.startswith("| **moderate average** | moderate | mean of c1, c2 | -500.0 ± 50.0 (4) |") for line in lines
    )
    json_path, csv_path = write_protocol(episodes, scores, tmp_path, {"family": "cadm_pendulum"})
    payload = json.loads(json_path.read_text())
    assert payload["family"] == "cadm_pendulum" and len(payload["episodes"]) == len(episodes)
    assert {(s["method"], s["name"]) for s in payload["scores"]} == {(s.method, s.name) for s in scores}
    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) == len(episodes)
    assert rows[0]["condition"] == "train" and float(rows[0]["episode_return"]) == -100.0
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files


def tiny_module(adaptation: str):
    from mbmeta.models.normaliser import transition_statistics
    from mbmeta.training.module import MetaDynamicsModule
    from mbmeta.types import Transition

    module = MetaDynamicsModule(
        obs_dim=3, action_dim=1, task_dim=2, adaptation=adaptation, ensemble_size=1, hidden_sizes=(8,), seed=0,
        learn_reward=False, context_hidden=(8,), latent_dim=2,
    )  # fmt: skip
    g = torch.Generator().manual_seed(0)
    obs = torch.randn(64, 3, generator=g)
    fake = Transition(
        obs, torch.rand(64, 1, generator=g) * 2 - 1, obs + 0.1, torch.randn(64, generator=g), obs[:, 0] > 9
    )
    module.fit_normaliser(transition_statistics(fake))
    return module.eval()


def test_every_method_sees_the_same_tasks_and_seeds():
    agent = AgentSettings.from_config(
        {
            "planner": {"class_path": "random_shooting", "init_args": {"population": 4}},
            "horizon": 2,
            "context_length": 2,
        }
    )
    runs = {}
    for adaptation in ("none", "context"):
        runs[adaptation] = evaluate_protocol(tiny_module(adaptation), PENDULUM, episodes=2, agent=agent, num_envs=2)
    for adaptation, episodes in runs.items():
        assert [e.condition for e in episodes] == [c for c in ("train", "c0", "c1", "c2", "c3") for _ in range(2)]
        assert all(e.record.method == adaptation and e.record.length == 200 for e in episodes)
        for e in episodes:
            assert PENDULUM.in_split(PENDULUM.validate(e.record.task), e.condition)
    pairs = zip(runs["none"], runs["context"], strict=True)
    assert all(a.record.task == b.record.task and a.record.seed == b.record.seed for a, b in pairs)
    assert {e.record.task["mass"] for e in runs["none"] if e.condition == "c3"} <= {1.6, 1.8}


def tiny_cartpole_module():
    from mbmeta.models.normaliser import transition_statistics
    from mbmeta.training.module import MetaDynamicsModule
    from mbmeta.types import Transition

    module = MetaDynamicsModule(
        obs_dim=4, action_dim=1, task_dim=2, adaptation="none", ensemble_size=1, hidden_sizes=(8,), seed=0,
        learn_reward=False,
    )  # fmt: skip
    g = torch.Generator().manual_seed(0)
    obs = torch.randn(64, 4, generator=g)
    fake = Transition(obs, torch.rand(64, 1, generator=g) * 2 - 1, obs + 0.1, torch.ones(64), obs[:, 0] > 9)
    module.fit_normaliser(transition_statistics(fake))
    return module.eval()


def test_cadms_estimator_averages_the_first_episodes_to_finish_restarts_included():
    # an untrained model on CartPole: the pole falls after 8-60 steps, so episodes end at different times
    cartpole = get_family("cadm_cartpole")
    agent = AgentSettings.from_config(
        {"planner": {"class_path": "random_shooting", "init_args": {"population": 4}}, "horizon": 2}
    )
    n, envs = 4, 3
    kwargs = {"episodes": n, "agent": agent, "num_envs": envs, "seed": 1}
    every = evaluate_protocol(tiny_cartpole_module(), cartpole, **kwargs)
    first = evaluate_protocol(tiny_cartpole_module(), cartpole, estimator="first_finished", **kwargs)
    drawn = protocol_tasks(cartpole, n + envs - 1, seed=1)
    restarted = 0
    for condition in ("train", "c0", "c1", "c2", "c3"):
        mine = [e.record for e in first if e.condition == condition]
        assert n <= len(mine) <= n + envs - 1
        assert all(r.task == drawn[condition][r.task_id].as_dict() for r in mine)  # launch j ran task j
        restarted += sum(r.task_id >= envs for r in mine)  # episodes started after another had ended
        assert sorted(e.record.task_id for e in every if e.condition == condition) == list(range(n))
        assert all(r.length < 200 for r in mine)  # failures: the estimator's bias, early-ending episodes first
    assert restarted > 0
    with pytest.raises(ValueError, match="protocol estimator must be one of all, first_finished, got 'cadm'"):
        evaluate_protocol(tiny_cartpole_module(), cartpole, estimator="cadm", **kwargs)


def test_cadms_estimator_needs_enough_tasks_for_every_restart():
    from mbmeta.evaluation.episodes import evaluate_agent

    cartpole = get_family("cadm_cartpole")
    tasks = protocol_tasks(cartpole, 5, seed=0)["train"]
    with pytest.raises(ValueError, match=r"at least N \+ num_envs - 1 = 6 tasks \(got N 4, episodes_per_task 1, 5 t"):
        evaluate_agent(tiny_cartpole_module(), cartpole, tasks, num_envs=3, first_finished=4)

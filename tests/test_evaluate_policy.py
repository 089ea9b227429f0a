"""`mbmeta evaluate --policy`: reference policies evaluated on a model's tasks and seeds, written in its format."""

import json

import pytest

from mbmeta.cli import main
from mbmeta.envs import get_family
from mbmeta.evaluation.episodes import evaluation_tasks

QUIET = ["--wandb.mode", "disabled"]


def evaluate(out, *arguments: str) -> dict:
    assert main(["evaluate", *arguments, *QUIET, "--out", str(out)]) == 0
    return json.loads((out / "results.json").read_text())


def test_random_runs_on_the_tasks_and_seeds_a_model_gets_and_its_own_seed_varies_only_the_actions(tmp_path):
    common = ["--policy", "random", "--family", "pendulum", "--tasks", "2", "--episodes_per_task", "2"]
    common += ["--num_envs", "3", "--seed", "5"]
    first = evaluate(tmp_path / "a", *common, "--labels", "uniform")
    again = evaluate(tmp_path / "b", *common, "--labels", "uniform")
    other = evaluate(tmp_path / "c", *common, "--labels", "uniform", "--policy_seed", "1")
    family = get_family("pendulum")
    tasks = [t.as_dict() for t in evaluation_tasks(family, "test", 2, seed=5, design="balanced")]
    episodes = first["episodes"]
    assert [(e["task_id"], e["seed"]) for e in episodes] == [(0, 5), (0, 6), (1, 5), (1, 6)]
    assert [e["task"] for e in episodes] == [tasks[0], tasks[0], tasks[1], tasks[1]]
    assert {e["method"] for e in episodes} == {"uniform"} and all(e["length"] == 200 for e in episodes)
    assert first["family"] == "pendulum" and first["split"] == "test" and first["task_design"] == "balanced"
    assert first["policy"] == "random" and first["policy_seed"] == 0 and "prediction_error" not in first
    returns = [e["episode_return"] for e in episodes]
    assert [e["episode_return"] for e in again["episodes"]] == returns  # seeded
    assert [e["episode_return"] for e in other["episodes"]] != returns  # another policy seed: other actions
    assert [(e["task"], e["seed"]) for e in other["episodes"]] == [(e["task"], e["seed"]) for e in episodes]
    csv = (tmp_path / "a" / "results.csv").read_text().splitlines()
    assert len(csv) == 5 and csv[0].startswith("method,task_id,task.") and csv[1].startswith("uniform,0,")
    assert not list((tmp_path / "a").glob("*.png")) and not list((tmp_path / "a").glob("*.gif"))


def test_scripted_is_the_noise_free_controller_labelled_by_its_name(tmp_path):
    common = ["--policy", "scripted", "--family", "juggler_balance_servo", "--tasks", "2", "--num_envs", "2"]
    results = evaluate(tmp_path / "a", *common)
    other_seed = evaluate(tmp_path / "b", *common, "--policy_seed", "7")
    episodes = results["episodes"]
    assert len(episodes) == 4 and {e["method"] for e in episodes} == {"scripted"}
    assert results["policy"] == "scripted" and results["family"] == "juggler_balance_servo"
    family = get_family("juggler_balance_servo")
    assert all(family.in_split(family.validate(e["task"]), "test") for e in episodes)
    # no action noise: the controller balances every test episode, and the policy seed changes nothing
    assert all(e["success"] and not e["terminated"] for e in episodes)
    assert [e["episode_return"] for e in other_seed["episodes"]] == [e["episode_return"] for e in episodes]


def test_the_family_measures_of_each_episode_are_written_beside_its_success(tmp_path):
    out = tmp_path / "bounce"
    common = ["--policy", "random", "--family", "juggler_bounce_servo", "--tasks", "2", "--num_envs", "2"]
    results = evaluate(out, *common)
    for episode in results["episodes"]:
        measures = episode["measures"]
        assert set(measures) == {"apexes", "target_apexes", "low_apexes", "high_apexes"}
        assert measures["apexes"] == measures["target_apexes"] + measures["low_apexes"] + measures["high_apexes"]
        assert episode["success"] == (not episode["terminated"] and measures["target_apexes"] >= 5)
    header = (out / "results.csv").read_text().splitlines()[0].split(",")
    assert header[-4:] == ["measure.apexes", "measure.high_apexes", "measure.low_apexes", "measure.target_apexes"]
    apexes = [e["measures"]["apexes"] for e in results["episodes"]]
    assert results["measure_mean"]["random"]["apexes"] == pytest.approx(sum(apexes) / len(apexes))


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--policy", "random", "--family", "pendulum", "--ckpt", "model.ckpt"], "--ckpt and --policy"),
        (["--policy", "random"], "needs --family"),
        (["--policy", "scripted", "--family", "pendulum"], "family 'pendulum' has no scripted controller"),
        (["--policy", "random", "--family", "pendulum", "--protocol", "cadm"], "--policy does not go with --protocol"),
        (["--policy", "random", "--family", "pendulum", "--labels", "a", "b"], "2 names for one policy"),
        ([], "--ckpt is required"),
    ],
)
def test_bad_policy_arguments_are_one_line(arguments, expected, tmp_path, capsys):
    assert main(["evaluate", *arguments, "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mbmeta evaluate: error: ") and expected in err[0], err
    assert not (tmp_path / "out").exists()

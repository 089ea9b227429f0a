"""experiment.yaml: what a valid design gives, and one-line errors that name the file and the key."""

from pathlib import Path

import pytest
import yaml

from mbmeta.runs.experiment import ExperimentError, load_experiment


def make(root: Path, design: dict | str) -> Path:
    (root / "configs").mkdir(parents=True, exist_ok=True)
    for name in ("train.yaml", "none.yaml", "context.yaml"):
        (root / "configs" / name).write_text("{}\n")
    text = design if isinstance(design, str) else yaml.safe_dump(design, sort_keys=False)
    (root / "experiment.yaml").write_text(text)
    return root


def valid() -> dict:
    return {
        "family": "pendulum",
        "description": "a\n  two-line  description",
        "train": {"configs": ["configs/train.yaml"], "seeds": [0, 1, 2]},
        "methods": {
            "none": "configs/none.yaml",
            "context": {"configs": ["configs/context.yaml"], "seeds": [0, 1]},
            "context-dp": {"model_of": "context", "agent": {"disagreement_penalty": 10}},
        },
        "evaluate": {"episodes_per_task": 3, "num_envs": 16, "seeds": [0, 5], "agent": {"horizon": 7}},
        "report": {
            "metrics": ["length", "episode_return"],
            "comparisons": [["context", "none"]],
            "conditions": {"light": {"mass": [0.2, 0.4]}},
        },
        "budget": {"transitions": 9600},
    }


def test_a_valid_design(tmp_path):
    experiment = load_experiment(make(tmp_path / "pend", valid()))
    assert experiment.name == "pend" and experiment.family == "pendulum"
    assert experiment.description == "a two-line description"
    assert list(experiment.methods) == ["none", "context", "context-dp"]
    assert experiment.methods["none"].seeds == (0, 1, 2) and experiment.methods["context"].seeds == (0, 1)
    assert experiment.methods["context-dp"].seeds == (0, 1)  # its models' seeds
    assert experiment.evaluation.seeds == (0, 5) and experiment.evaluation.split == "test"
    assert experiment.evaluation_agent("context-dp") == {"horizon": 7, "disagreement_penalty": 10}
    assert experiment.conditions == {"light": {"mass": (0.2, 0.4)}}
    runs = experiment.training_runs()
    assert [r.name for r in runs] == ["none-seed0", "none-seed1", "none-seed2", "context-seed0", "context-seed1"]
    assert runs[3].configs == ("configs/train.yaml", "configs/context.yaml")
    evaluations = experiment.evaluation_runs()
    assert len(evaluations) == (3 + 2 + 2) * 2
    dp = [e for e in evaluations if e.method == "context-dp"]
    assert dp[0].training.name == "context-seed0" and dp[0].out_dir == "results/context-dp-seed0/eval0"


def test_a_subsample_of_the_grid_is_balanced_unless_the_design_says_even(tmp_path):
    from mbmeta.runs.sweep import evaluate_arguments, evaluation_settings

    def first_evaluation(evaluate):
        design = valid()
        design["evaluate"].update(evaluate)
        experiment = load_experiment(make(tmp_path / "pend", design))
        evaluation = experiment.evaluation_runs()[0]
        return evaluation_settings(experiment, evaluation), evaluate_arguments(experiment, evaluation)

    settings, arguments = first_evaluation({"tasks": 4})
    assert settings["task_design"] == "balanced" and "--task_design balanced" in " ".join(arguments)
    settings, arguments = first_evaluation({"tasks": 4, "task_design": "even"})
    assert settings["task_design"] == "even" and "--tasks 4 --task_design even" in " ".join(arguments)
    settings, arguments = first_evaluation({})  # the whole grid: no design to record
    assert "task_design" not in settings and "--task_design" not in arguments


def test_reference_policies_have_policy_seeds_and_no_training(tmp_path):
    design = valid()
    design["methods"].update(random={"policy": "random"}, scripted={"policy": "scripted", "seeds": [4]})
    design["report"]["comparisons"].append(["context", "random"])
    experiment = load_experiment(make(tmp_path / "pend", design))
    random, scripted = experiment.methods["random"], experiment.methods["scripted"]
    assert random.policy == "random" and random.seeds == (0, 1, 2) and not random.trains  # train.seeds by default
    assert scripted.seeds == (4,) and experiment.comparisons[-1] == ("context", "random")
    assert [r.method for r in experiment.training_runs()] == ["none"] * 3 + ["context"] * 2
    policy_runs = [e for e in experiment.evaluation_runs() if e.method in ("random", "scripted")]
    assert len(policy_runs) == (3 + 1) * 2  # policy seeds × evaluation seeds
    assert all(e.training is None and e.policy == e.method for e in policy_runs)
    assert [e.out_dir for e in policy_runs[-2:]] == ["results/scripted-seed4/eval0", "results/scripted-seed4/eval5"]
    assert policy_runs[-1].job_name == "scripted-seed4"


def test_the_directory_or_the_file_may_be_given(tmp_path):
    root = make(tmp_path / "pend", valid())
    assert load_experiment(root / "experiment.yaml").root == root


@pytest.mark.parametrize(
    ("change", "key", "problem"),
    [
        (lambda d: d.update(familly="x"), "(top level)", "unknown key 'familly'"),
        (lambda d: d.pop("family"), "family", "missing"),
        (lambda d: d["train"].update(configs=["configs/nope.yaml"]), "train.configs", "'configs/nope.yaml' does not"),
        (lambda d: d["train"].update(configs=["/etc/passwd"]), "train.configs", "inside the experiment directory"),
        (lambda d: d["train"].update(seeds=[0, 0]), "train.seeds", "seeds repeat"),
        (lambda d: d["train"].update(seeds="0 1"), "train.seeds", "non-empty list of integer seeds"),
        (lambda d: d["methods"].update(oracle={"configs": "configs/none.yaml", "model_of": "none"}), "methods.oracle",
         "either 'configs'"),
        (lambda d: d["methods"].update(dp={"model_of": "context-dp"}), "methods.dp.model_of",
         "not a method that trains"),
        (lambda d: d["methods"].update(dp={"model_of": "context", "seeds": [2]}), "methods.dp.seeds",
         "no training seed 2"),
        (lambda d: d["methods"].update({"bad/name": "configs/none.yaml"}), "methods.bad/name", "names directories"),
        (lambda d: d["methods"].update(rnd={"policy": "random", "agent": {"horizon": 3}}), "methods.rnd.agent",
         "does not go with 'policy'"),
        (lambda d: d["methods"].update(rnd={"policy": "random", "configs": "configs/none.yaml"}),
         "methods.rnd.configs", "does not go with 'policy'"),
        (lambda d: d["methods"].update(rnd={"policy": "random", "model_of": "none"}), "methods.rnd.model_of",
         "does not go with 'policy'"),
        (lambda d: d["methods"].update(ppo={"policy": "ppo"}), "methods.ppo.policy", "one of random, scripted"),
        (lambda d: d["methods"].update(rnd={"policy": "random", "seeds": [1, 1]}), "methods.rnd.seeds", "repeat"),
        (lambda d: d["methods"].update(rnd={"policy": "random"}, dp={"model_of": "rnd"}), "methods.dp.model_of",
         "not a method that trains"),
        (lambda d: (d["methods"].update(rnd={"policy": "random"}), d.update(report={}),
                    d.update(evaluate={"protocol": "cadm"})), "methods.rnd.policy", "not evaluated under"),
        (lambda d: d["evaluate"].update(episodes_per_task=0), "evaluate.episodes_per_task", ">= 1"),
        (lambda d: d["evaluate"].update(split="valid"), "evaluate.split", "test, train or validation"),
        (lambda d: d["evaluate"].update(task_design="lhs"), "evaluate.task_design", "one of balanced, even"),
        (lambda d: d["evaluate"].update(num_episodes=3), "evaluate", "unknown key 'num_episodes'"),
        (lambda d: d["report"].update(metrics=["reward"]), "report.metrics", "unknown metric 'reward'"),
        (lambda d: d["report"].update(metrics=["measure."]), "report.metrics", "or measure.<name>"),
        (lambda d: d["report"].update(comparisons=[["context", "oracle"]]), "report.comparisons",
         "unknown method 'oracle'"),
        (lambda d: d["report"].update(comparisons=[["context"]]), "report.comparisons", "[first, second] pair"),
        (lambda d: d["report"]["conditions"].update(heavy={"mass": "1.5"}), "report.conditions.heavy.mass",
         "list of numbers"),
        (lambda d: d["report"].update(published={"source": "P", "values": {"moderate": {"none": 1}}}),
         "report.published.values.moderate", "unknown condition (expected one of overall, light)"),
        (lambda d: d["report"].update(published={"source": "P", "values": {}, "doi": "x"}), "report.published",
         "unknown key 'doi'"),
    ],
)  # fmt: skip
def test_bad_designs_get_one_line_errors_naming_file_and_key(tmp_path, change, key, problem):
    design = valid()
    change(design)
    root = make(tmp_path / "pend", design)
    with pytest.raises(ExperimentError) as err:
        load_experiment(root)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{root / 'experiment.yaml'}: {key}: ")
    assert problem in message


def test_missing_and_unparsable_files(tmp_path):
    with pytest.raises(ExperimentError, match="no such experiment file"):
        load_experiment(tmp_path)
    root = make(tmp_path / "pend", "family: [unclosed\n")
    with pytest.raises(ExperimentError, match="not valid YAML") as err:
        load_experiment(root)
    assert "\n" not in str(err.value)


def test_published_numbers_of_a_test_split_experiment(tmp_path):
    design = valid()
    design["report"]["published"] = {
        "source": "  A  paper ",
        "values": {"overall": {"none": 12}, "light": {"context": -3.5}},
    }
    published = load_experiment(make(tmp_path / "pend", design)).published
    assert published.source == "A paper"
    assert published.values == {"overall": {"none": 12.0}, "light": {"context": -3.5}}

"""The reproduction experiments of issue 19 (experiments/cadm_{pendulum,cartpole,halfcheetah}) are designed as fixed:
their configs are CaDM's reference configs (only the kept checkpoints and the run directory added), their seeds,
methods and evaluation are the issue's, and every training run's configs parse as `mbmeta sweep` will run them."""

from pathlib import Path

import pytest
import yaml

from mbmeta.commands.sweep import check_train_configs
from mbmeta.runs.experiment import load_experiment
from mbmeta.runs.sweep import plan_jobs

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
REFERENCE = EXPERIMENTS / "cadm_reference" / "configs"
TABLE_1 = {  # issue 19: CaDM's Table 1, moderate test, PE-TS (none) and PE-TS + CaDM (context)
    "cadm_pendulum": {"none": -985.7, "context": -705.5},
    "cadm_cartpole": {"none": 171.3, "context": 187.3},
    "cadm_halfcheetah": {"none": 2019.6, "context": 7087.2},
}
DESIGNS = {  # family config, training seeds, methods, learning curve
    "cadm_pendulum": ("pendulum", [0, 1, 2, 3, 4], ["none", "context", "oracle"], False),
    "cadm_cartpole": (
        "cartpole",
        [0, 1, 2, 3, 4],
        ["none", "context", "oracle", "none-steps", "context-steps"]
        + ["none-cadm", "context-cadm", "none-steps-cadm", "context-steps-cadm"]  # CaDM's test estimator
        + ["none-steps-exact", "context-steps-exact"],  # CaDM's own planner on the -steps models
        False,
    ),
    "cadm_halfcheetah": ("halfcheetah", [0, 1], ["none", "context"], True),
}


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("name", DESIGNS)
def test_the_configs_are_cadms_reference_configs(name):
    family = DESIGNS[name][0]
    config = load(EXPERIMENTS / name / "configs" / f"{family}.yaml")
    reference = load(REFERENCE / f"{family}.yaml")
    assert config["loop"].pop("keep_checkpoints_every") == 4
    for loop in (config["loop"], reference["loop"]):
        loop.pop("run_dir")  # the runner sets it
    if name == "cadm_cartpole":  # its first runs counted episodes; its -steps methods add CaDM's budget in steps
        steps = {"min_transitions": 2000, "under_way": "drop"}  # CaDM's sampler rule
        assert load(EXPERIMENTS / name / "configs" / "steps.yaml") == {"loop": steps}
        assert not set(steps) & set(config["loop"])
        config["loop"].update(steps)
    assert config == reference
    for method in ("none", "context"):
        assert load(EXPERIMENTS / name / "configs" / "methods" / f"{method}.yaml") == load(
            REFERENCE / "methods" / f"{method}.yaml"
        )


@pytest.mark.parametrize("name", DESIGNS)
def test_the_design_is_the_issues(name):
    _, seeds, methods, curve = DESIGNS[name]
    experiment = load_experiment(EXPERIMENTS / name)
    assert list(experiment.methods) == methods
    assert all(list(m.seeds) == seeds for m in experiment.methods.values())
    assert experiment.evaluation.protocol == "cadm" and experiment.evaluation.protocol_episodes is None  # CaDM's 10
    assert experiment.evaluation.every_kept_checkpoint is curve
    assert ("context", "none") in experiment.comparisons and experiment.order == "seed"
    published = dict(TABLE_1[name])
    for method in methods:  # the same methods at CaDM's budget in steps or with its estimator: the same numbers
        base = method.removesuffix("-cadm").removesuffix("-exact").removesuffix("-steps")
        if base != method:
            published[method] = published[base]
        if method.endswith("-cadm"):  # the final models of the method it names, evaluated with CaDM's estimator
            m = experiment.methods[method]
            assert (m.model_of, m.protocol_estimator) == (method.removesuffix("-cadm"), "first_finished")
        if method.endswith("-exact"):  # the final models of the method it names, planned with CaDM's own planner
            m = experiment.methods[method]
            exact = load(REFERENCE / "planners" / "cadm_exact.yaml")["agent"]
            assert (m.model_of, m.agent, m.protocol_estimator) == (method.removesuffix("-exact"), exact, None)
    assert experiment.published.values == {"moderate": published} and "CaDM" in experiment.published.source
    # the planner the configs carry (issue 19 part 1's, set before launch) is the one the README records
    readme = (EXPERIMENTS / name / "README.md").read_text()
    agent = load(EXPERIMENTS / name / "configs" / f"{DESIGNS[name][0]}.yaml")["agent"]
    assert (agent["propagation"], agent["particles"], agent["precision"]) == ("ts1", 1, "bf16")
    assert "one trajectory-sampled particle" in " ".join(readme.replace("**", "").split())


@pytest.mark.parametrize("name", DESIGNS)
def test_every_run_parses_as_the_sweep_will_run_it(name):
    experiment = load_experiment(EXPERIMENTS / name)
    check_train_configs(experiment, [job.training for job in plan_jobs(experiment)])

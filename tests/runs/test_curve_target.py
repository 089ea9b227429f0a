"""report.curve_target: the transitions each training seed needed to reach a value of the headline metric."""

import pytest
import yaml

from mbmeta.runs.curve import _render_to_target, steps_to_target
from mbmeta.runs.experiment import ExperimentError, load_experiment


def experiment(tmp_path, report=None, every=True):
    (tmp_path / "configs").mkdir(parents=True, exist_ok=True)
    (tmp_path / "configs" / "train.yaml").write_text("{}\n")
    design = {
        "family": "pendulum",
        "train": {"configs": ["configs/train.yaml"], "seeds": [0, 1]},
        "methods": {"none": "configs/train.yaml", "context": "configs/train.yaml"},
        "evaluate": {"every_kept_checkpoint": every},
        "report": {"metrics": ["length"], **(report or {})},
    }
    (tmp_path / "experiment.yaml").write_text(yaml.safe_dump(design))
    return load_experiment(tmp_path)


def point(method, transitions, values):
    """A curve point as merge_curve builds it: overall value and transitions per seed."""
    return {
        "method": method,
        "transitions_per_seed": {str(s): transitions for s in values},
        "values": {"overall": {"per_seed": {str(s): v for s, v in values.items()}}},
    }


def test_each_seed_reports_its_first_checkpoint_at_or_above_the_target(tmp_path):
    exp = experiment(tmp_path, {"curve_target": 225})
    points = [
        point("none", 10_000, {0: 100.0, 1: 224.9}),
        point("none", 12_000, {0: 225.0, 1: 180.0}),  # seed 0 reaches it exactly; seed 1 falls back
        point("none", 14_000, {0: 250.0, 1: 240.0}),
        point("context", 10_000, {0: 250.0, 1: 50.0}),
        point("context", 12_000, {0: 200.0, 1: 60.0}),  # seed 1 never reaches it
    ]
    result = steps_to_target(exp, points, "overall", 0.95)
    none, context = result["methods"]["none"], result["methods"]["context"]
    assert none["per_seed"] == {"0": 12_000, "1": 14_000} and none["reached"] == 2 and none["n"] == 2
    assert none["estimate"]["mean"] == 13_000 and none["estimate"]["n"] == 2 and none["estimate"]["low"] < 13_000
    assert context["per_seed"] == {"0": 10_000, "1": None} and context["reached"] == 1
    assert context["estimate"] is None  # no mean over seeds when one never reached the target
    text = "\n".join(_render_to_target({"metric": "length", "confidence": 0.95, "to_target": result}))
    assert "transitions to reach 225.0 (overall)" in text
    assert "| `none` | 2 of 2 | 0: 12,000, 1: 14,000 | 13,000 |" in text
    assert "| `context` | 1 of 2 | 0: 10,000, 1: — | — | — | — |" in text


def test_without_a_target_nothing_is_reported(tmp_path):
    exp = experiment(tmp_path)
    assert steps_to_target(exp, [point("none", 1, {0: 1.0})], "overall", 0.95) is None
    assert _render_to_target({"metric": "length", "confidence": 0.95, "to_target": None}) == []


@pytest.mark.parametrize(
    ("report", "every", "problem"),
    [({"curve_target": "225"}, True, "expected a number"), ({"curve_target": 225}, False, "needs evaluate.every")],
)
def test_a_bad_target_is_refused_naming_the_key(tmp_path, report, every, problem):
    with pytest.raises(ExperimentError, match=f"report.curve_target: {problem}"):
        experiment(tmp_path, report, every)

"""A run recorded before typed planner settings resumes with the equivalent settings in today's spelling."""

import json
import shutil

import pytest

from mbmeta.runs.loop import run_training

from .conftest import AGENT, PLANNER, tiny_settings
from .runs import check_run


def _as_an_old_version_recorded_it(run_dir):
    """Rewrite the run's agent group as mbmeta wrote it before typed planner settings."""
    path = run_dir / "config.json"
    config = json.loads(path.read_text())
    agent = config["agent"]
    agent["planner"], agent["planner_options"] = PLANNER["class_path"], dict(PLANNER["init_args"])
    agent["context_size"] = agent.pop("context_length")
    path.write_text(json.dumps(config))
    return config


def test_an_old_run_resumes_with_the_equivalent_new_settings(tmp_path, tiny_run):
    shutil.copytree(tiny_run, tmp_path / "run")
    recorded = _as_an_old_version_recorded_it(tmp_path / "run")
    assert recorded["agent"]["context_size"] == AGENT["context_length"]
    run_training(**tiny_settings(tmp_path / "run", iterations=2))  # the same settings, spelled as today
    check_run(tmp_path / "run", iterations=2)


def test_an_old_run_with_other_planner_settings_is_refused_naming_the_option(tmp_path, tiny_run):
    shutil.copytree(tiny_run, tmp_path / "run")
    _as_an_old_version_recorded_it(tmp_path / "run")
    settings = tiny_settings(tmp_path / "run", iterations=2)
    settings["agent"].planner.population = 2 * PLANNER["init_args"]["population"]
    with pytest.raises(ValueError, match=r"different settings \(agent\.planner\.population: 16 -> 32\)"):
        run_training(**settings)

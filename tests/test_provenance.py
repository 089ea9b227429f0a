"""mbmeta.provenance: the software versions recorded beside runs and evaluations, and their changes on resume."""

import importlib.metadata
import json
import platform

import pytest

from mbmeta.provenance import PACKAGES, describe_versions, software_versions, version_changes
from mbmeta.runs.run_dir import SOFTWARE_FILE, RunDirectory


def test_the_versions_are_the_installed_ones():
    versions = software_versions()
    assert list(versions) == ["python", "mbmeta", *PACKAGES]
    assert versions["python"] == platform.python_version()
    assert versions["torch"] == importlib.metadata.version("torch")
    assert versions["mujoco"] == importlib.metadata.version("mujoco")
    assert describe_versions({"torch": "2.13.0", "mujoco": "4.0.1"}) == "torch 2.13.0, mujoco 4.0.1"


def test_changes_name_each_package_that_differs():
    before = {"torch": "2.13.0", "mujoco": "3.3.7", "old": "1"}
    after = {"torch": "2.13.0", "mujoco": "4.0.1", "new": "2"}
    assert version_changes(before, after) == ["mujoco 3.3.7 -> 4.0.1", "old 1 -> not recorded", "new not recorded -> 2"]
    assert version_changes(after, after) == []


def test_each_start_and_resume_is_recorded_and_a_change_is_logged(tmp_path):
    lines: list[str] = []
    with RunDirectory(tmp_path / "run") as run:
        run.start({"loop": {"seed": 0}})
        run.record_software(0, {"torch": "2.13.0", "mujoco": "3.3.7"}, lines.append)
        run.record_software(4, {"torch": "2.13.0", "mujoco": "3.3.7"}, lines.append)
        assert not any("warning" in line for line in lines)
        run.record_software(9, {"torch": "2.13.0", "mujoco": "4.0.1"}, lines.append)
    entries = json.loads((tmp_path / "run" / SOFTWARE_FILE).read_text())
    assert [e["iteration"] for e in entries] == [0, 4, 9]
    assert entries[-1]["versions"]["mujoco"] == "4.0.1"
    assert lines[0] == "software: torch 2.13.0, mujoco 3.3.7"
    assert "continues under other software than its last start: mujoco 3.3.7 -> 4.0.1" in lines[-1]


@pytest.mark.parametrize("damage", ["{not json", '{"a": 1}', "[1, 2]"])
def test_a_damaged_record_is_left_as_it_is(tmp_path, damage):
    lines: list[str] = []
    with RunDirectory(tmp_path / "run") as run:
        run.start({"loop": {"seed": 0}})
        path = tmp_path / "run" / SOFTWARE_FILE
        path.write_text(damage)
        run.record_software(3, {"torch": "2.13.0"}, lines.append)
    assert path.read_text() == damage  # provenance is never overwritten, the run goes on
    assert lines[0] == "software: torch 2.13.0" and "is unreadable" in lines[1] and SOFTWARE_FILE in lines[1]

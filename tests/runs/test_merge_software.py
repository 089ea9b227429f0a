"""The merged table says which software releases its evaluations and trainings ran under, and warns when they mix."""

import json

from test_sweep_runner import sweep, write_experiment  # tests/runs on sys.path

from mbmeta.runs.experiment import load_experiment
from mbmeta.runs.merge import merge, render_table, write_merged
from mbmeta.runs.software import release_warnings, software_lines, training_software


def versions(mujoco: str) -> dict[str, str]:
    return {"python": "3.11.7", "mbmeta": "0.1.0", "torch": "2.13.0+cpu", "mujoco": mujoco, "numpy": "2.4.6"}


def record(experiment, out_dir: str, software: dict[str, str]) -> None:
    """Add ``software`` to a done evaluation's results.json, as mbmeta evaluate writes it."""
    path = experiment.root / out_dir / "results.json"
    results = json.loads(path.read_text())
    path.write_text(json.dumps(results | {"software": software}))


def swept(tmp_path, calls):
    design = write_experiment(tmp_path / "exp", methods={"none": "configs/none.yaml"}, report={"comparisons": []})
    experiment = load_experiment(design)
    sweep(experiment).run()
    return experiment


def test_a_table_of_one_release_names_it_and_counts_the_unrecorded(tmp_path, calls):
    experiment = swept(tmp_path, calls)
    record(experiment, "results/none-seed0/eval0", versions("4.0.1"))
    record(experiment, "results/none-seed0/eval1", versions("4.0.1"))
    summary = merge(experiment)
    assert summary["software"]["evaluations"]["results/none-seed0/eval0"]["mujoco"] == "4.0.1"
    assert summary["software"]["evaluations"]["results/none-seed1/eval0"] is None
    table = render_table(experiment, summary)
    assert "| mujoco | 4.0.1 (2), not recorded (2) | not recorded (2) |" in table
    assert "more than one release" not in table


def test_evaluations_under_two_releases_are_flagged(tmp_path, calls):
    experiment = swept(tmp_path, calls)
    record(experiment, "results/none-seed0/eval0", versions("3.17.0"))
    record(experiment, "results/none-seed1/eval0", versions("4.0.1"))
    table = render_table(experiment, merge(experiment))
    assert "| mujoco | 3.17.0 (1), 4.0.1 (1), not recorded (2) |" in table
    assert "more than one release of mujoco (3.17.0, 4.0.1)" in table
    assert "torch (" not in table  # one torch release: not flagged


def test_a_training_resumed_under_another_release_is_named(tmp_path, calls):
    experiment = swept(tmp_path, calls)
    entries = [{"iteration": 0, "versions": versions("3.17.0")}, {"iteration": 3, "versions": versions("4.0.1")}]
    (experiment.root / "runs" / "none-seed1" / "software.json").write_text(json.dumps(entries))
    summary = merge(experiment)
    assert summary["software"]["trainings"]["runs/none-seed1"] == [versions("3.17.0"), versions("4.0.1")]
    table = render_table(experiment, summary)
    assert "| mujoco | not recorded (4) | 3.17.0 (1), 4.0.1 (1), not recorded (1) |" in table
    assert "`runs/none-seed1` (mujoco 3.17.0 -> 4.0.1)" in table
    write_merged(experiment, summary)  # what --merge-only writes round-trips through summary.json
    rebuilt = json.loads((experiment.root / "results" / "summary.json").read_text())
    assert render_table(experiment, rebuilt) == table


def test_a_damaged_software_file_counts_as_not_recorded(tmp_path):
    (tmp_path / "software.json").write_text("{not json")
    assert training_software(tmp_path) is None
    (tmp_path / "software.json").write_text(json.dumps([{"iteration": 0}]))
    assert training_software(tmp_path) is None
    assert training_software(tmp_path / "absent") is None


def test_a_package_missing_from_a_record_counts_as_not_recorded():
    lines = software_lines({"evaluations": {"a": {"mujoco": "4.0.1"}, "b": versions("4.0.1")}, "trainings": {}})
    assert "| torch | 2.13.0+cpu (1), not recorded (1) | — |" in lines


def test_a_table_with_nothing_recorded_says_so_in_one_sentence(tmp_path, calls):
    experiment = swept(tmp_path, calls)
    table = render_table(experiment, merge(experiment))
    assert "Not recorded: these evaluations and training runs predate" in table
    assert "| mujoco |" not in table


def test_a_sweep_warns_when_done_evaluations_ran_under_other_releases(tmp_path, calls, capsys, monkeypatch):
    from mbmeta.commands import sweep as sweep_command

    experiment = swept(tmp_path, calls)
    record(experiment, "results/none-seed0/eval0", versions("3.17.0"))
    record(experiment, "results/none-seed1/eval0", versions("4.0.1"))
    monkeypatch.setattr("mbmeta.provenance.software_versions", lambda: versions("4.0.1"))
    sweep_command._warn_of_other_releases(experiment)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1  # mujoco only: torch and numpy are the installed ones
    assert out[0].startswith("warning: this experiment's done evaluations ran under other mujoco releases")
    assert "(1 under 3.17.0) than this sweep's 4.0.1" in out[0]


def test_no_warning_when_every_recorded_release_is_the_installed_one():
    software = {"evaluations": {"a": versions("4.0.1"), "b": None, "c": {"torch": "2.13.0+cpu"}}, "trainings": {}}
    assert release_warnings(software, versions("4.0.1")) == []
    warned = release_warnings(software, versions("4.0.2") | {"torch": "2.14.0"})
    assert [line.split(" releases")[0].rsplit(" ", 1)[1] for line in warned] == ["torch", "mujoco"]
    assert "(2 under 2.13.0+cpu) than this sweep's 2.14.0" in warned[0]


def test_a_run_that_started_before_versions_were_recorded_counts_its_start_as_not_recorded(tmp_path):
    entries = [{"iteration": 2, "versions": versions("4.0.1")}]
    (tmp_path / "software.json").write_text(json.dumps(entries))
    assert training_software(tmp_path) == [None, versions("4.0.1")]
    lines = software_lines({"evaluations": {}, "trainings": {"runs/r": training_software(tmp_path)}})
    assert "| mujoco | — | 4.0.1 (1), not recorded (1) |" in lines
    assert not any(line.startswith("Training runs resumed") for line in lines)  # no recorded change to name

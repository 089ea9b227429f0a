"""benchmarks/planning_cost.py runs on a checkpoint, writes one JSON per setting and the table, and resumes."""

import importlib.util
import json
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "planning_cost.py"


def _load():
    spec = importlib.util.spec_from_file_location("planning_cost", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_planning_cost_measures_pairs_and_resumes(tiny_run, tmp_path, capsys):
    bench = _load()
    argv = ["--ckpt", str(tiny_run / "model.ckpt"), "--out", str(tmp_path), "--episodes", "2", "--max_steps", "3"]
    argv += ["--cost_steps", "1", "--cost_envs", "1", "--settings", "cadm_exact", "icem_small_expectation_bf16"]
    assert bench.main(argv) == 0
    exact = json.loads((tmp_path / "cadm_exact.json").read_text())
    cheap = json.loads((tmp_path / "icem_small_expectation_bf16.json").read_text())
    assert exact["split"] == "train" and len(exact["returns"]) == len(cheap["returns"]) == 2
    assert exact["agent"]["particles"] == 20 and cheap["agent"]["propagation"] == "expectation"
    assert exact["cpu_s_per_step"]["1"] > 0
    table = (tmp_path / "table.md").read_text()
    assert "| cadm_exact |" in table and "| icem_small_expectation_bf16 |" in table and "minus cadm_exact" in table
    assert "Cheapest setting that passes at every batch size:" in table
    capsys.readouterr()
    before = (tmp_path / "cadm_exact.json").read_bytes()
    assert bench.main(argv) == 0  # a second run measures nothing again
    assert "cadm_exact: measured already" in capsys.readouterr().out
    assert (tmp_path / "cadm_exact.json").read_bytes() == before
    assert exact["cost_code"]  # the code the cost was measured on


def test_cost_only_re_measures_the_cost_and_keeps_the_returns(tiny_run, tmp_path, capsys):
    bench = _load()
    argv = ["--ckpt", str(tiny_run / "model.ckpt"), "--out", str(tmp_path), "--episodes", "2", "--max_steps", "3"]
    argv += ["--cost_steps", "1", "--cost_envs", "1", "--settings", "icem_small_expectation_bf16"]
    assert bench.main(argv) == 0
    path = tmp_path / "icem_small_expectation_bf16.json"
    first = json.loads(path.read_text())
    first["cpu_s_per_step"] = {"1": -1.0}  # a stale cost, to see it replaced
    path.write_text(json.dumps(first))
    assert bench.main([*argv[:-2], "--settings", "icem_small_expectation_bf16", "cadm_exact", "--cost_only"]) == 0
    again = json.loads(path.read_text())
    assert again["returns"] == first["returns"] and again["cpu_s_per_step"]["1"] > 0
    assert not (tmp_path / "cadm_exact.json").exists()  # --cost_only measures no new setting
    assert "cost re-measured" in capsys.readouterr().out


def test_a_setting_killed_between_groups_resumes_from_its_finished_groups(tiny_run, tmp_path, monkeypatch):
    bench = _load()
    argv = ["--ckpt", str(tiny_run / "model.ckpt"), "--out", str(tmp_path), "--episodes", "4", "--max_steps", "3"]
    argv += ["--cost_steps", "1", "--cost_envs", "1", "--group", "2", "--settings", "icem_small_expectation_bf16"]
    assert bench.main(argv) == 0
    whole = json.loads((tmp_path / "icem_small_expectation_bf16.json").read_text())
    assert whole["group"] == 2 and len(whole["returns"]) == 4
    assert not list((tmp_path / "partial").iterdir())  # a finished setting leaves nothing partial

    out = tmp_path / "killed"
    import mbmeta.evaluation.episodes as episodes

    real, calls = episodes.evaluate_agent, []

    def killed_in_the_second_group(*args, **kwargs):
        calls.append(len(args[2]))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(episodes, "evaluate_agent", killed_in_the_second_group)
    killed = [*argv[:3], str(out), *argv[4:]]
    try:
        bench.main(killed)
    except KeyboardInterrupt:
        pass
    partial = json.loads((out / "partial" / "icem_small_expectation_bf16.returns.json").read_text())
    assert len(partial["groups"]) == 1 and not (out / "icem_small_expectation_bf16.json").exists()
    cost = (out / "partial" / "icem_small_expectation_bf16.cost.json").read_text()
    calls.clear()
    monkeypatch.setattr(episodes, "evaluate_agent", lambda *a, **k: calls.append(len(a[2])) or real(*a, **k))
    assert bench.main(killed) == 0
    assert calls == [2]  # only the second group ran again
    resumed = json.loads((out / "icem_small_expectation_bf16.json").read_text())
    assert resumed["returns"][:2] == partial["groups"][0] and len(resumed["returns"]) == 4
    assert resumed["cpu_s_per_step"] == json.loads(cost)  # the cost was not measured again
    assert resumed["returns"] == whole["returns"]  # the same groups, tasks and seeds: the same episodes


def test_passes_needs_ten_times_the_speed_and_an_overlapping_return():
    bench = _load()
    reference = [-300.0, -310.0, -290.0, -305.0]
    close = [-320.0, -330.0, -310.0, -325.0]  # interval reaches into the reference's
    far = [-600.0, -610.0, -590.0, -605.0]
    assert bench.passes(close, reference, 12.0)
    assert not bench.passes(close, reference, 9.0)  # not 10x cheaper
    assert not bench.passes(far, reference, 50.0)  # cheap but worse
    assert bench.passes([-100.0, -90.0, -110.0, -95.0], reference, 10.0)  # exceeding counts
    assert not bench.passes([-300.0], reference, 20.0)  # no interval from one episode


def test_decide_names_the_cheapest_setting_passing_on_every_family(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "planning_cost_decide", BENCHMARK.parents[1] / "experiments" / "planning_cost" / "decide.py"
    )
    decide = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(decide)
    reference = [-300.0, -310.0, -290.0, -305.0]
    settings = {  # name: (cost per env step at 1 and 10 envs, returns)
        "cadm_exact": ((2.0, 1.8), reference),
        "good": ((0.15, 0.12), [-305.0, -312.0, -295.0, -300.0]),  # 13x cheaper, same return: passes
        "cheap_but_worse": ((0.05, 0.04), [-600.0, -610.0, -590.0, -605.0]),  # fails on return
        "too_slow": ((0.5, 0.4), reference),  # 4x cheaper only
    }
    for family in ("pendulum", "halfcheetah"):
        (tmp_path / family).mkdir()
        for name, ((one, ten), returns) in settings.items():
            result = {"returns": returns, "cpu_s_per_step": {"1": one, "10": ten}, "agent": {"name": name}}
            (tmp_path / family / f"{name}.json").write_text(json.dumps(result))
    unmeasured = {"returns": reference, "cpu_s_per_step": {"1": 0.01, "10": 0.01}, "agent": {}}
    (tmp_path / "pendulum" / "only_pendulum.json").write_text(json.dumps(unmeasured))  # not on halfcheetah yet

    winner, table = decide.decide(tmp_path, ["pendulum", "halfcheetah"])
    assert winner == "good"
    assert table["only_pendulum"]["halfcheetah"] is None and table["only_pendulum"]["pendulum"] is not None
    assert table["cheap_but_worse"]["pendulum"] is None and table["too_slow"]["halfcheetah"] is None
    assert abs(table["good"]["pendulum"] - 0.15 / 2.0) < 1e-12  # the worse of the two batch sizes

"""Every number on docs/results.md and in the experiments' READMEs is what `mbmeta sweep --merge-only` gives.

The stored outputs under experiments/*/results/ are merged afresh (nothing is read from the committed tables), and
each results-page row must show the same n, method means, paired difference, interval and verdict; the committed
results/table.md and summary.json must equal the fresh merge, and every table line of an experiment's README must
appear in its table.md. Transfer rows must equal the means of their transfer.json.
"""

import json
import re
from pathlib import Path

import pytest

from mbmeta.evaluation.tables import format_number, metric_info
from mbmeta.runs.experiment import load_experiment
from mbmeta.runs.merge import merge, render_table

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "results.md"
DESIGNED = sorted(
    p.parent for p in (REPO / "experiments").glob("*/experiment.yaml") if not p.parent.name.startswith("smoke")
)
# an experiment is reported once its merged table is committed; until then its README says it has not run
EXPERIMENTS = [root for root in DESIGNED if (root / "results" / "summary.json").is_file()]
NOT_RUN = "**Status: not run yet.**"
LINK = re.compile(r"\]\(\.\./experiments/([^/)]+)/\)")
COMPARISON = re.compile(r"^`([^`]+)` − `([^`]+)`$")


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def page_rows() -> list[list[str]]:
    return [cells(line) for line in PAGE.read_text().splitlines() if line.startswith("| `") and LINK.search(line)]


@pytest.fixture(scope="module")
def merged():
    return {root.name: merge(load_experiment(root)) for root in EXPERIMENTS}


def mean_cell(entry: dict, pair_n: int, digits: int = 1) -> str:
    text = format_number(entry["mean"], digits)
    if entry["n"] > 1:
        text += f" ± {format_number(entry['se'], digits)}"
    return text + (f" (n = {entry['n']})" if entry["n"] != pair_n else "")


@pytest.mark.parametrize("root", [r for r in DESIGNED if r not in EXPERIMENTS], ids=lambda p: p.name)
def test_an_experiment_without_a_merged_table_says_it_has_not_run(root):
    readme = (root / "README.md").read_text()
    # not run, or launched with nothing merged yet: either way the README claims no result
    assert NOT_RUN in readme or ("**Status: running" in readme and "Nothing below is a result yet." in readme)
    assert not list(root.glob("results/*/eval*/sweep.json"))  # no evaluation output left unmerged


def test_the_page_has_a_row_for_every_headline_comparison(merged):
    rows = page_rows()
    assert len(rows) >= 15
    named = {LINK.search(r[1]).group(1) for r in rows}
    # every experiment with a comparison to show is on the page (a running one may have merged a single method)
    comparable = {
        name
        for name, summary in merged.items()
        if any(d["n"] > 0 for m in summary["metrics"].values() for c in m["differences"].values() for d in c.values())
    }
    assert named == comparable
    assert comparable >= {
        root.name for root in EXPERIMENTS if "**Status: running" not in (root / "README.md").read_text()
    }


@pytest.mark.parametrize("row", page_rows(), ids=lambda r: f"{LINK.search(r[1]).group(1)}:{r[0]}")
def test_page_row_equals_the_merge(row, merged):
    comparison, experiment_cell, condition, n, first, second, difference, interval, verdict = row
    name = LINK.search(experiment_cell).group(1)
    a, b = COMPARISON.match(comparison).groups()
    experiment = load_experiment(REPO / "experiments" / name)
    tables = merged[name]["metrics"][experiment.metrics[0]]
    digits = metric_info(experiment.metrics[0])[1]  # as the experiment's own table shows the metric (success: 0.12)
    diff = tables["differences"][f"{a} - {b}"][condition]
    assert int(n) == diff["n"]
    assert first == mean_cell(tables["methods"][a][condition], diff["n"], digits)
    assert second == mean_cell(tables["methods"][b][condition], diff["n"], digits)
    spread = f" ± {format_number(diff['se'], digits)}" if diff["n"] > 1 else ""
    assert difference == format_number(diff["mean"], digits, signed=True) + spread
    if diff["n"] > 1:
        low, high = format_number(diff["low"], digits, signed=True), format_number(diff["high"], digits, signed=True)
        assert interval == f"[{low}, {high}]"
    else:
        assert interval == "—"
    assert verdict == diff["verdict"]


def transfer_rows() -> list[list[str]]:
    return [cells(line) for line in PAGE.read_text().splitlines() if "transfer.json](" in line]


@pytest.mark.parametrize("row", transfer_rows(), ids=lambda r: r[1])
def test_transfer_row_equals_its_transfer_json(row):
    _, _, eval_episodes, zero_shot, finetuned, scratch, output = row
    path = (PAGE.parent / re.search(r"\]\(([^)]+)\)", output).group(1)).resolve()
    rows = json.loads(path.read_text())["rows"]
    mean = {(r["method"], r["episodes"]): sum(r["returns"]) / len(r["returns"]) for r in rows}
    assert all(len(r["returns"]) == int(eval_episodes) for r in rows)
    assert zero_shot == format_number(mean[("zero-shot", 0)])
    assert finetuned == " / ".join(format_number(mean[("finetune", k)]) for k in (1, 5, 20))
    assert scratch == " / ".join(format_number(mean[("scratch", k)]) for k in (1, 5, 20))


@pytest.mark.parametrize("root", EXPERIMENTS, ids=lambda p: p.name)
def test_committed_table_and_summary_equal_a_fresh_merge(root, merged):
    experiment = load_experiment(root)
    summary = merged[root.name]
    assert json.loads((root / "results" / "summary.json").read_text()) == json.loads(json.dumps(summary))
    assert (root / "results" / "table.md").read_text() == render_table(experiment, summary)


@pytest.mark.parametrize("root", EXPERIMENTS, ids=lambda p: p.name)
def test_readme_tables_are_lines_of_the_merged_table(root):
    table = set((root / "results" / "table.md").read_text().splitlines())
    lines = [line for line in (root / "README.md").read_text().splitlines() if line.startswith("| `")]
    assert lines, "the README shows no table"
    missing = [line for line in lines if line not in table]
    assert not missing, missing


def test_pendulum_context_mean_is_the_mean_of_its_stored_episodes():
    # independent of the merge code: seed means from the stored files, then their mean
    root = REPO / "experiments" / "pendulum"
    seed_means = []
    for seed in range(6):
        episodes = json.loads((root / "results" / f"context-seed{seed}" / "eval0" / "results.json").read_text())
        returns = [e["episode_return"] for e in episodes["episodes"]]
        assert len(returns) == 48
        seed_means.append(sum(returns) / len(returns))
    assert format_number(sum(seed_means) / 6) == "−748.9"
    row = "| `context` − `none` | [pendulum](../experiments/pendulum/) | overall | 6 | −748.9 ± 14.6 |"
    assert row in PAGE.read_text()


def test_every_experiment_directory_is_in_the_experiments_index():
    index = (REPO / "experiments" / "README.md").read_text()
    directories = sorted(p.name for p in (REPO / "experiments").iterdir() if (p / "README.md").is_file())
    assert directories, "no experiment directory found"
    missing = [name for name in directories if f"[{name}]({name}/)" not in index]
    assert not missing, f"experiments/README.md does not list {missing}"

"""`mbmeta sweep` end to end on experiments/smoke_cadm: CaDM's protocol and the learning curve of kept checkpoints,
with real `mbmeta train` / `mbmeta evaluate --protocol cadm` subprocesses (training seed 0 only, to keep it short).

The merged numbers are checked against the stored protocol.json episodes, computed here independently of the merge
code; the curve's x values against the episodes the loop collected before each kept iteration.
"""

import json
import shutil
from pathlib import Path

import pytest
import yaml

from mbmeta.cli import main

REPO = Path(__file__).resolve().parents[2]
SMOKE_CADM = REPO / "experiments" / "smoke_cadm"
MODERATE = ("c1", "c2")  # cadm_pendulum's inner test conditions


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    root = tmp_path_factory.mktemp("exp") / "smoke_cadm"
    shutil.copytree(SMOKE_CADM, root, ignore=shutil.ignore_patterns("runs", "results"))
    assert main(["sweep", str(root), "--seeds", "0", "--jobs", "2"]) == 0
    return root


def seed_moderate(root: Path, out_dir: str, method: str) -> float:
    """A seed's moderate average from its protocol.json: the mean of the moderate conditions' mean returns."""
    episodes = json.loads((root / out_dir / "protocol.json").read_text())["episodes"]
    means = []
    for condition in MODERATE:
        returns = [e["episode_return"] for e in episodes if e["condition"] == condition and e["method"] == method]
        means.append(sum(returns) / len(returns))
    return sum(means) / len(means)


def test_the_table_holds_each_seeds_moderate_average_from_its_episodes(swept):
    summary = json.loads((swept / "results" / "summary.json").read_text())
    assert summary["protocol"] == "cadm" and summary["headline"] == "moderate"
    for method in ("none", "context"):
        entry = summary["metrics"]["episode_return"]["methods"][method]["moderate"]
        assert entry["n"] == 1
        assert entry["per_seed"]["0"] == pytest.approx(seed_moderate(swept, f"results/{method}-seed0/eval0", method))
        episodes = json.loads((swept / f"results/{method}-seed0/eval0/protocol.json").read_text())["episodes"]
        assert len(episodes) == 5 * 2  # train + c0..c3, protocol_episodes 2 each
    statuses = {(r["method"], r["seed"]): r["status"] for r in summary["runs"]}
    assert statuses == {("none", 0): "done", ("context", 0): "done", ("none", 1): "missing", ("context", 1): "missing"}
    assert "### moderate (mean of c1, c2)" in (swept / "results" / "table.md").read_text()


def test_every_kept_checkpoint_is_a_point_of_the_curve(swept):
    state = json.loads((swept / "runs" / "context-seed0" / "state.json").read_text())
    assert [(k["iteration"], k["episodes"], k["transitions"]) for k in state["kept"]] == [(1, 2, 40), (2, 4, 80)]
    curve = json.loads((swept / "results" / "curve.json").read_text())
    points = {(p["method"], p["iteration"]): p for p in curve["points"]}
    assert sorted(points) == [("context", 1), ("context", 2), ("none", 1), ("none", 2)]
    assert [points[("context", i)]["transitions"] for i in (1, 2)] == [40, 80]
    out = "results/context-seed0/curve/iteration_002/eval0"
    assert len(json.loads((swept / out / "protocol.json").read_text())["episodes"]) == 5  # curve_episodes 1
    value = points[("context", 2)]["values"]["moderate"]["per_seed"]["0"]
    assert value == pytest.approx(seed_moderate(swept, out, "context"))
    assert (swept / "results" / "curve.png").read_bytes()[:4] == b"\x89PNG"


def test_a_second_sweep_skips_everything(swept, capsys):
    assert main(["sweep", str(swept), "--seeds", "0", "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert "start" not in out and out.count("skip ") == 2 + 2 + 4  # trainings, final and kept evaluations


@pytest.mark.parametrize(
    "change, message",
    [
        ({"configs/train.yaml": ("keep_checkpoints_every: 1", "keep_checkpoints_every: 0")}, "keep no checkpoint"),
        (
            {
                "configs/train.yaml": ("family: cadm_pendulum", "family: pendulum"),
                "experiment.yaml": ("family: cadm_pendulum", "family: pendulum"),
            },
            "no reference-protocol test conditions",
        ),  # fmt: skip
    ],
    ids=["no-kept-checkpoints", "family-without-protocol"],
)
def test_a_design_the_configs_cannot_serve_is_refused_before_anything_runs(tmp_path, capsys, change, message):
    root = tmp_path / "smoke_cadm"
    shutil.copytree(SMOKE_CADM, root, ignore=shutil.ignore_patterns("runs", "results"))
    for name, (old, new) in change.items():
        (root / name).write_text((root / name).read_text().replace(old, new))
    assert yaml.safe_load((root / "experiment.yaml").read_text())  # still valid YAML
    assert main(["sweep", str(root), "--jobs", "1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("mbmeta sweep: error: ") and message in err and "\n" not in err
    assert not (root / "runs").exists()

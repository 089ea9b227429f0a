"""experiments/juggler_servo_comparison/transfer_table.py: the fine-tuned transfer table of issue 20.

Synthetic ``transfer.json`` files in tmp_path; the script is loaded from its file as ``python <script>`` runs it.
"""

import json
from pathlib import Path

import pytest
from script_loading import script_module

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "juggler_servo_comparison" / "transfer_table.py"


@pytest.fixture(scope="module")
def script():
    yield from script_module(SCRIPT, "transfer_table_script")


def write(root: Path, run: str, task: int, zero: float, tuned: dict[int, float], scratch: float = 50.0) -> None:
    """One transfer.json: every row's two evaluation episodes last ``value`` and ``value`` steps."""
    rows = [{"method": "zero-shot", "episodes": 0, "lengths": [zero, zero]}]
    for episodes, value in tuned.items():
        rows.append({"method": "finetune", "episodes": episodes, "lengths": [value, value]})
        rows.append({"method": "scratch", "episodes": episodes, "lengths": [scratch, scratch]})
    out = root / "results" / "transfer" / run / f"task{task}"
    out.mkdir(parents=True)
    (out / "transfer.json").write_text(json.dumps({"rows": rows}))


def test_the_table_reduces_per_seed_and_pairs_by_seed(script, tmp_path):
    for seed, shift in ((0, 0.0), (1, 10.0), (2, 20.0)):
        for task in script.TASKS:
            write(tmp_path, f"context-seed{seed}", task, 200 + shift + task, {1: 210 + shift, 5: 240 + shift})
            write(tmp_path, f"none-seed{seed}", task, 190 + shift + task, {1: 200 + shift, 5: 230 + shift})
    write(tmp_path, "none-seed3", 1, 100, {1: 100, 5: 100})  # one task of four: not counted
    values, incomplete = script.load(tmp_path)
    # context seed 0 zero-shot: mean over tasks 1, 5, 8, 15 of 200 + task = 207.25
    assert values["context"][0][("zero-shot", 0)] == pytest.approx(207.25)
    assert set(values["none"]) == {0, 1, 2} and incomplete == ["none-seed3 (task5, task8, task15 not done)"]
    text = script.table(values, incomplete)
    zero = next(line for line in text.splitlines() if line.startswith("| zero-shot | 0 |"))
    assert "217.2 ± 5.8" in zero and "(n = 3)" in zero  # context: 207.25, 217.25, 227.25
    assert "+10.0 [+10.0, +10.0] (n = 3): not established" in zero  # the same 10 at every seed: no spread
    tuned = next(line for line in text.splitlines() if line.startswith("| `context` | 5 |"))
    assert "+32.8 [+32.8, +32.8] (n = 3): not established" in tuned  # 240 − 207.25 at every seed: no spread
    assert "+200.0 [+175.2, +224.8] (n = 3): above" in tuned  # fine-tune − scratch: 240 + shift − 50
    assert "Not counted (a transfer task is missing): none-seed3" in text


def test_a_broken_file_names_itself(script, tmp_path):
    bad = tmp_path / "results" / "transfer" / "none-seed0"
    for task in script.TASKS:
        (bad / f"task{task}").mkdir(parents=True)
        (bad / f"task{task}" / "transfer.json").write_text("{not json")
    with pytest.raises(SystemExit, match="task1/transfer.json: not a transfer.json"):
        script.load(tmp_path)

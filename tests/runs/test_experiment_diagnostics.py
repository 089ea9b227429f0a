"""Every experiment diagnostic script imports with today's package layout and answers --help.

Each is loaded from its file as ``python <script>`` would run it (its directory first on ``sys.path``, for the
scripts that import a sibling), then ``main(["--help"])`` must print a usage and exit 0.
"""

import importlib.util
import sys
from pathlib import Path

import pytest

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
SCRIPTS = sorted(EXPERIMENTS.glob("*/diagnostics/*.py"))


def test_there_are_diagnostics():
    assert len(SCRIPTS) >= 10


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_diagnostic_imports_and_answers_help(script, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(script.parent))
    spec = importlib.util.spec_from_file_location(f"diagnostic_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:") and module.__doc__.splitlines()[0].split()[0] in out

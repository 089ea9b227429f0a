"""The `mbmeta` command: help lists only working subcommands, each of which answers --help."""

import logging
import subprocess
import sys

import pytest

from mbmeta.cli import SUBCOMMANDS, main


def test_help_lists_every_subcommand(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert f"  {name} " in out


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_each_subcommand_has_help(name):
    # A subprocess, as a user runs it: --help must exit 0 and describe the command.
    proc = subprocess.run([sys.executable, "-m", "mbmeta", name, "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "usage" in proc.stdout.lower()


def test_unknown_command_lists_valid_ones(capsys):
    assert main(["no-such-command"]) == 2
    err = capsys.readouterr().err
    assert "no-such-command" in err
    for name in SUBCOMMANDS:
        assert name in err


def test_envs_lists_registered_families(capsys):
    from mbmeta.envs import families

    assert main(["envs", "--markdown"]) == 0
    out = capsys.readouterr().out
    for family in families():
        assert family.env_id in out
        for parameter in family.parameter_names:
            assert parameter in out


def test_envs_lists_the_reference_test_conditions(capsys):
    from mbmeta.envs import get_family

    assert main(["envs", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert "| cadm_pendulum | c0 | extreme | mass {0.2, 0.4}, length {1.6, 1.8} |" in out
    assert "| cadm_crippled_halfcheetah | c1 | extreme | crippled_fshin {1}, crippled_ffoot {1} |" in out
    for condition in get_family("cadm_halfcheetah").conditions:
        assert f"| cadm_halfcheetah | {condition.name} | {condition.group} |" in out


def test_envs_check_reports_each_parameter(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # rich folds long names in a narrow (captured) terminal
    assert main(["envs", "--check", "cadm_pendulum", "cadm_ant", "--steps", "5"]) == 0
    out = capsys.readouterr().out
    for name in ("mass", "length", "leg_mass_scale"):
        assert name in out
    assert "NO" not in out


def test_envs_check_names_an_unknown_family(capsys):
    assert main(["envs", "--check", "no_such_family"]) == 2
    err = capsys.readouterr().out
    assert "no_such_family" in err and "cadm_pendulum" in err


def test_docs_table_of_families_is_current():
    # docs/task_families.md embeds `mbmeta envs --markdown`; regenerate it when a family changes.
    from pathlib import Path

    from mbmeta.commands.envs import markdown_table

    docs = (Path(__file__).resolve().parents[1] / "docs" / "task_families.md").read_text()
    assert markdown_table() in docs


def test_readme_python_example_runs():
    # The README's first Python example, executed as written (it must stay true).
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    first_block = re.findall(r"```python\n(.*?)```", readme, flags=re.S)[0]
    namespace: dict = {}
    exec(compile(first_block, "README.md", "exec"), namespace)
    assert namespace["info"]["task"] == namespace["task"].as_dict()


def test_lightning_tips_are_dropped_and_other_messages_kept(caplog):
    import pytorch_lightning as pl

    from mbmeta.cli import LIGHTNING_INFO_LOGGER, _is_not_a_tip, quiet_lightning_tips

    lightning_logger = logging.getLogger(LIGHTNING_INFO_LOGGER)
    lightning_logger.removeFilter(_is_not_a_tip)  # other tests ran main(), which installs it

    def lightning_messages() -> list[str]:
        caplog.clear()
        with caplog.at_level(logging.INFO, logger=LIGHTNING_INFO_LOGGER):
            pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
        return [r.getMessage() for r in caplog.records if r.name == LIGHTNING_INFO_LOGGER]

    before = lightning_messages()
    assert any(m.startswith("💡 Tip") for m in before), before  # Lightning prints one: the filter has work to do
    quiet_lightning_tips()
    quiet_lightning_tips()  # idempotent: one filter, not two
    try:
        after = lightning_messages()
        assert not any(m.startswith("💡 Tip") for m in after), after
        assert any("GPU available" in m for m in after), after  # the device report stays
        assert lightning_logger.filters.count(_is_not_a_tip) == 1
    finally:
        lightning_logger.removeFilter(_is_not_a_tip)


def test_juggler_video_help_names_its_options(capsys):
    # The command lives in mbmeta.commands (one module per subcommand) and parses its own arguments.
    assert SUBCOMMANDS["juggler-video"].target == "mbmeta.commands.juggler_video:run"
    with pytest.raises(SystemExit) as exit_info:
        main(["juggler-video", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: mbmeta juggler-video")
    for option in ("--task {balance,bounce}", "--out", "--steps", "--seed", "--size"):
        assert option in out

"""Every command reports an expected failure as one line naming the cause (exit 1), Ctrl-C as `interrupted` (130);
MBMETA_TRACEBACK shows the traceback instead."""

import errno
import json

import pytest

from mbmeta.commands import evaluate, fit, train, transfer


def _one_error_line(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"mbmeta {command}: error: "), err
    return err[0]


@pytest.mark.parametrize("command", [evaluate, transfer])
def test_a_missing_checkpoint_is_named_not_mistaken_for_a_missing_family(command, tmp_path, capsys):
    argv = ["--ckpt", str(tmp_path / "nope.ckpt")] + (["--task", '{"mass": 1.0}'] if command is transfer else [])
    assert command.run(argv) == 1
    line = _one_error_line(capsys, command.__name__.rsplit(".", 1)[-1])
    assert "nope.ckpt' does not exist" in line and "--family" not in line


def test_a_run_config_holding_a_list_is_one_line(tmp_path, capsys):
    (tmp_path / "model.ckpt").write_bytes(b"not read before the config")
    (tmp_path / "config.json").write_text(json.dumps([1, 2]))
    assert evaluate.run(["--ckpt", str(tmp_path / "model.ckpt")]) == 1
    assert "config.json' is corrupt" in _one_error_line(capsys, "evaluate")


def test_fit_names_a_truncated_resume_checkpoint(tmp_path, capsys):
    ckpt = tmp_path / "last.ckpt"
    ckpt.write_bytes(b"PK\x03\x04 truncated")
    assert fit.run(["--ckpt_path", str(ckpt), "--data.buffer_path", str(tmp_path / "b.npz")]) == 1
    assert "last.ckpt' is truncated or corrupt" in _one_error_line(capsys, "fit")


@pytest.mark.parametrize(
    "failure, code, expected",
    [
        (OSError(errno.ENOSPC, "No space left on device", "runs/x/buffer.npz"), 1, "No space left on device"),
        (PermissionError(errno.EACCES, "Permission denied", "runs/x/state.json"), 1, "Permission denied"),
        (KeyboardInterrupt(), 130, "mbmeta train: interrupted"),
    ],
)
def test_os_errors_and_interrupts_are_one_line(failure, code, expected, tmp_path, monkeypatch, capsys):
    def fail(*args, **kwargs):
        raise failure

    monkeypatch.setattr("mbmeta.runs.loop.run_training", fail)
    assert train.run(["--loop.run_dir", str(tmp_path / "run")]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err


def test_the_traceback_variable_shows_the_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("MBMETA_TRACEBACK", "1")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        evaluate.run(["--ckpt", str(tmp_path / "nope.ckpt")])


def test_no_render_backend_is_forced_where_egl_is_missing(monkeypatch):
    # Training never renders: without EGL the command must not force MUJOCO_GL=egl (MuJoCo would fail to load it).
    import ctypes.util

    from mbmeta import cli

    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    assert cli.main(["--version"]) == 0
    import os

    assert "MUJOCO_GL" not in os.environ
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: f"lib{name}.so.1")
    assert cli.main(["--version"]) == 0
    assert os.environ["MUJOCO_GL"] == "egl"


PARSED_COMMANDS = ["train", "evaluate", "transfer", "fit", "quickstart", "juggler-video", "sweep"]


def _parse_error_lines(capsys, argv: list[str]) -> list[str]:
    from mbmeta.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("command", PARSED_COMMANDS)
def test_an_unknown_flag_is_three_lines_not_the_whole_usage(command, capsys):
    lines = _parse_error_lines(capsys, [command, "--no_such_flag", "1"])
    assert len(lines) == 3, lines
    assert lines[0].startswith(f"usage: mbmeta {command} ") and len(lines[0]) <= 110, lines[0]
    assert lines[1].startswith(f"mbmeta {command}: error: unrecognized arguments: --no_such_flag"), lines[1]
    assert lines[2] == f"`mbmeta {command} --help` lists every option"


@pytest.mark.parametrize("command", ["train", "evaluate", "transfer", "fit"])
def test_a_misspelt_config_path_is_named_in_three_lines(command, capsys):
    lines = _parse_error_lines(capsys, [command, "--config", "configs/pendullum.yaml"])
    assert len(lines) == 3 and "pendullum.yaml" in lines[1] and "does not exist" in lines[1], lines


def test_a_misspelt_flag_gets_the_closest_option(capsys):
    lines = _parse_error_lines(capsys, ["train", "--loop.iteratons", "3"])
    assert "--loop.iteratons (did you mean --loop.iterations?)" in lines[1], lines

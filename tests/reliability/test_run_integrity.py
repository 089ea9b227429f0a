"""A run directory is either absent or committed; anything in between, and anything changed after it was written,
is refused with an error naming the file, and no good file is ever overwritten (issue: reliability round 2)."""

import json
import os
import shutil
import stat

import numpy as np
import pytest
import torch

from mbmeta.data.buffer import BufferFormatError, EpisodeBuffer
from mbmeta.models.checkpoint import CheckpointError, load_checkpoint, load_dynamics
from mbmeta.runs import run_dir as run_dir_module
from mbmeta.runs.loop import run_training
from mbmeta.runs.run_dir import RunDirectory
from mbmeta.training.module import MetaDynamicsModule

from .conftest import tiny_settings
from .runs import assert_same_run, check_run


@pytest.fixture
def run(tmp_path, tiny_run):
    """A private copy of the completed tiny run (files copied, so model.ckpt is no longer a hard link)."""
    target = tmp_path / "run"
    shutil.copytree(tiny_run, target, copy_function=shutil.copyfile)
    return target


def _snapshot(run_dir):
    return {p.relative_to(run_dir): p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and p.name != ".lock"}


def _flip_byte_in_weights(path, seed=0):
    """Flip one byte inside a tensor's stored data (not in a zip header): a bit rot torch's reader would not see."""
    data = bytearray(path.read_bytes())
    state = torch.load(path, weights_only=True)["state_dict"]
    weight = next(value for name, value in state.items() if name.endswith("weight") and value.numel() > 8)
    needle = weight.flatten()[3:5].numpy().tobytes()
    at = bytes(data).find(needle)
    assert at > 0, "the weights' bytes were not found in the file"
    data[at + np.random.default_rng(seed).integers(len(needle))] ^= 0x10
    path.write_bytes(bytes(data))


def test_state_file_that_is_a_directory_is_refused_and_nothing_is_overwritten(run):
    (run / "state.json").unlink()
    (run / "state.json").mkdir()
    before = _snapshot(run)
    for _ in range(2):  # every re-run refuses the same way
        with pytest.raises(ValueError, match=r"state\.json.*not a file.*restore it"):
            run_training(**tiny_settings(run))
    assert _snapshot(run) == before


def test_deleted_state_file_is_refused_instead_of_redoing_the_run(run):
    (run / "state.json").unlink()
    before = _snapshot(run)
    with pytest.raises(ValueError, match=r"buffer\.npz.*model\.ckpt.*no state\.json.*will not overwrite"):
        run_training(**tiny_settings(run))
    assert _snapshot(run) == before


@pytest.mark.parametrize("damage", ["deleted", "list", "not json"])
def test_missing_or_malformed_config_beside_a_committed_state_is_refused(run, damage):
    config = run / "config.json"
    if damage == "deleted":
        config.unlink()
    else:
        config.write_text("[1, 2]" if damage == "list" else "{not json")
    before = _snapshot(run)
    settings = tiny_settings(run, iterations=2)
    settings["loop"].seed = 99  # a changed setting must not slip through a missing record
    with pytest.raises(ValueError, match=r"config\.json.*(missing|corrupt)"):
        run_training(**settings)
    assert _snapshot(run) == before


def test_checkpoint_path_outside_the_run_directory_is_refused(run):
    state = json.loads((run / "state.json").read_text())
    state["checkpoint"] = "../../elsewhere.ckpt"
    (run / "state.json").write_text(json.dumps(state))
    with pytest.raises(ValueError, match=r"state\.json.*outside the run directory"):
        run_training(**tiny_settings(run))


def test_one_flipped_byte_in_the_weights_is_detected_and_the_good_checkpoint_is_kept(run):
    ckpt = run / "checkpoints" / "iteration_001.ckpt"
    good = (run / "model.ckpt").read_bytes()
    _flip_byte_in_weights(ckpt)
    with pytest.raises(CheckpointError, match=r"iteration_001\.ckpt.*CRC"):
        load_checkpoint(ckpt)
    with pytest.raises(CheckpointError, match="CRC"):
        load_dynamics(ckpt)
    with pytest.raises(ValueError, match=r"iteration_001\.ckpt.*SHA-256 mismatch"):
        run_training(**tiny_settings(run, iterations=2))
    assert (run / "model.ckpt").read_bytes() == good  # not re-published over the intact copy


def test_a_buffer_changed_after_its_commit_is_detected(run):
    buffer = EpisodeBuffer.load(run / "buffer.npz")
    changed = EpisodeBuffer(buffer.obs_dim, buffer.action_dim, buffer.task_names, family=buffer.family)
    for e in range(buffer.num_episodes):
        episode = buffer.episode(e)
        if e == 1:
            episode = {**episode, "reward": episode["reward"] + 1.0}
        changed.add_episode(**episode, task=buffer.task(e))
    changed.save(run / "buffer.npz")
    saved = (run / "buffer.npz").read_bytes()
    with pytest.raises(ValueError, match=r"buffer\.npz.*differ from what was committed"):
        run_training(**tiny_settings(run, iterations=2))
    assert (run / "buffer.npz").read_bytes() == saved


def test_a_kill_during_the_first_collection_restarts_cleanly(tmp_path, tiny_run, monkeypatch):
    # The state is written before any data: a buffer left by an interrupted iteration 0 is uncommitted, not orphaned.
    real_commit = RunDirectory.commit

    def buffer_then_kill(self, buffer, iteration, checkpoint=None):
        buffer.save(self.buffer_path)
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(RunDirectory, "commit", buffer_then_kill)
    with pytest.raises(KeyboardInterrupt):
        run_training(**tiny_settings(tmp_path))
    assert json.loads((tmp_path / "state.json").read_text())["episodes"] == 0
    monkeypatch.setattr(RunDirectory, "commit", real_commit)
    run_training(**tiny_settings(tmp_path))
    check_run(tmp_path, iterations=1)
    assert_same_run(tmp_path, tiny_run)


def test_rerunning_a_finished_run_leaves_no_publish_link(tmp_path, tiny_run):
    shutil.copytree(tiny_run, tmp_path / "run")  # hard links kept where copy2 keeps them: publish is a no-op
    run_training(**tiny_settings(tmp_path / "run"))
    run_training(**tiny_settings(tmp_path / "run"))
    assert not [p.name for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")]
    source, target = tmp_path / "run" / "checkpoints" / "iteration_001.ckpt", tmp_path / "run" / "model.ckpt"
    run_dir_module.publish(source, target)
    run_dir_module.publish(source, target)
    assert os.path.samefile(source, target)
    assert not list((tmp_path / "run").glob(".*publish.tmp"))


def test_files_are_written_with_the_umask_so_shared_runs_stay_readable(tmp_path):
    old = os.umask(0o022)
    try:
        run_training(**tiny_settings(tmp_path))
    finally:
        os.umask(old)
    for name in ("buffer.npz", "config.json", "state.json", "model.ckpt"):
        mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
        assert mode == 0o644, f"{name} has mode {oct(mode)}"


def test_a_buffer_with_nan_names_the_file(tmp_path, tiny_run):
    # EpisodeBuffer never writes NaN (add_episode refuses it), so the file is altered as another tool would.
    with np.load(tiny_run / "buffer.npz", allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    arrays["reward"] = arrays["reward"].copy()
    arrays["reward"][5] = np.nan
    path = tmp_path / "nan.npz"
    np.savez(path, **arrays)
    with pytest.raises(BufferFormatError, match=r"nan\.npz.*non-finite.*reward"):
        EpisodeBuffer.load(path)


def test_unreadable_files_are_reported_as_permission_errors(run):
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode")
    (run / "buffer.npz").chmod(0)
    with pytest.raises(PermissionError, match=r"buffer\.npz"):
        EpisodeBuffer.load(run / "buffer.npz")


def test_lightning_entry_point_refuses_pickled_code_even_when_torch_is_told_to_allow_it(
    tiny_run, tmp_path, monkeypatch
):
    from .test_checkpoint import _Payload

    checkpoint = torch.load(tiny_run / "model.ckpt", weights_only=True)
    marker = tmp_path / "pwned"
    checkpoint["hyper_parameters"]["payload"] = _Payload(marker)
    torch.save(checkpoint, tmp_path / "malicious.ckpt")
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.raises(CheckpointError, match="malicious.ckpt"):
        MetaDynamicsModule.load_from_checkpoint(tmp_path / "malicious.ckpt")
    assert not marker.exists()
    module = MetaDynamicsModule.load_from_checkpoint(tiny_run / "model.ckpt")  # a good one loads, weights equal
    for name, value in checkpoint["state_dict"].items():
        assert torch.equal(module.state_dict()[name], value), name


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["checkpoint", "buffer"])
def test_fuzzed_files_never_escape_as_tracebacks_or_load_silently_changed(tiny_run, tmp_path, kind):
    # A few hundred seeded mutations (flipped bytes, overwritten runs, truncations): each either loads exactly the
    # original content or fails with the loader's own error naming the file.
    source = tiny_run / ("model.ckpt" if kind == "checkpoint" else "buffer.npz")
    original = source.read_bytes()
    rng = np.random.default_rng(0)
    if kind == "checkpoint":
        reference = load_checkpoint(source)["state_dict"]
    else:
        reference = EpisodeBuffer.load(source)
    outcomes = {"refused": 0, "identical": 0}
    for trial in range(300):
        data = bytearray(original)
        mode = trial % 3
        if mode == 0:
            for at in rng.integers(len(data), size=rng.integers(1, 4)):
                data[at] ^= int(rng.integers(1, 256))
        elif mode == 1:
            at = int(rng.integers(len(data)))
            data[at : at + 16] = rng.integers(0, 256, size=len(data[at : at + 16]), dtype=np.uint8).tobytes()
        else:
            del data[int(rng.integers(1, len(data))) :]
        path = tmp_path / f"fuzz{trial}{source.suffix}"
        path.write_bytes(bytes(data))
        try:
            if kind == "checkpoint":
                loaded = load_checkpoint(path)["state_dict"]
                assert loaded.keys() == reference.keys(), f"trial {trial}: keys changed silently"
                assert all(torch.equal(loaded[k], reference[k]) for k in reference), f"trial {trial}: weights changed"
            else:
                loaded = EpisodeBuffer.load(path)
                assert loaded.digest() == reference.digest(), f"trial {trial}: content changed silently"
                assert loaded.metadata() == reference.metadata(), f"trial {trial}: metadata changed silently"
            outcomes["identical"] += 1
        except (CheckpointError, BufferFormatError) as err:
            assert path.name in str(err), f"trial {trial}: the error does not name the file: {err}"
            outcomes["refused"] += 1
        path.unlink()
    assert outcomes["refused"] > 200, outcomes

"""Helpers to inspect run directories and to kill `mbmeta train` subprocesses at chosen moments."""

import csv
import hashlib
import json
import os
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import torch

from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.training.checkpoint import load_checkpoint

from .conftest import LOOP, subprocess_env


def check_run(run_dir: Path, iterations: int) -> EpisodeBuffer:
    """Assert a completed run is whole: right episode count, no duplicates, continuous episodes, consistent state."""
    buffer = EpisodeBuffer.load(run_dir / "buffer.npz")
    expected = LOOP["initial_episodes"] + iterations * LOOP["episodes_per_iteration"]
    assert buffer.num_episodes == expected, f"{buffer.num_episodes} episodes, expected {expected}"
    state = json.loads((run_dir / "state.json").read_text())
    assert state == {
        "iteration": iterations,
        "episodes": expected,
        "checkpoint": f"checkpoints/iteration_{iterations:03d}.ckpt",
        "buffer_digest": buffer.digest(),
        "checkpoint_sha256": hashlib.sha256((run_dir / state["checkpoint"]).read_bytes()).hexdigest(),
    }
    fingerprints = set()
    for e in range(buffer.num_episodes):
        ep = buffer.episode(e)
        assert np.array_equal(ep["next_obs"][:-1], ep["obs"][1:]), f"episode {e} is not continuous"
        assert ep["truncated"][-1] or ep["terminated"][-1], f"episode {e} does not end"
        fingerprints.add(ep["obs"].tobytes() + ep["action"].tobytes())
    assert len(fingerprints) == buffer.num_episodes, "duplicated episodes"
    assert load_checkpoint(run_dir / "model.ckpt")["state_dict"]
    assert os.path.samefile(run_dir / "model.ckpt", run_dir / state["checkpoint"]) or (
        (run_dir / "model.ckpt").read_bytes() == (run_dir / state["checkpoint"]).read_bytes()
    )
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] == [Path(state["checkpoint"]).name]
    leftovers = [p.name for p in run_dir.rglob("*.tmp")]
    assert not leftovers, f"temporary files left behind: {leftovers}"
    # iteration times: each committed iteration at most once (a redone one replaces its row), none beyond the state
    with open(run_dir / "iteration_times.csv") as f:
        recorded = [int(row["iteration"]) for row in csv.DictReader(f)]
    assert recorded == sorted(set(recorded)) and set(recorded) <= set(range(iterations + 1)), recorded
    return buffer


def assert_same_run(a: Path, b: Path) -> None:
    """The two run directories hold identical buffers and identical model weights."""
    buf_a, buf_b = EpisodeBuffer.load(a / "buffer.npz"), EpisodeBuffer.load(b / "buffer.npz")
    assert buf_a.num_episodes == buf_b.num_episodes
    for name in ("obs", "action", "reward", "next_obs", "terminated", "truncated"):
        assert np.array_equal(buf_a.field(name), buf_b.field(name)), name
    assert np.array_equal(buf_a.tasks, buf_b.tasks)
    assert np.array_equal(buf_a.episode_starts, buf_b.episode_starts)
    weights_a = load_checkpoint(a / "model.ckpt")["state_dict"]
    weights_b = load_checkpoint(b / "model.ckpt")["state_dict"]
    assert weights_a.keys() == weights_b.keys()
    for key in weights_a:
        assert torch.equal(weights_a[key], weights_b[key]), key


class Train:
    """An `mbmeta train` subprocess whose stdout lines are collected by a thread (never blocks the test)."""

    def __init__(self, argv: list[str], cwd: Path):
        self.proc = subprocess.Popen(
            argv, cwd=cwd, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, condition, timeout: float = 240.0) -> bool:
        """Poll until ``condition(lines)`` holds; False if the process ended first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                while True:
                    line = self._queue.get_nowait()
                    if line is None:
                        return condition(self.lines)
                    self.lines.append(line)
            except queue.Empty:
                pass
            if condition(self.lines):
                return True
            time.sleep(0.02)
        raise TimeoutError(f"condition not met in {timeout} s; output so far:\n" + "\n".join(self.lines[-30:]))

    def kill(self) -> int:
        """SIGKILL the process (no cleanup code runs) and return its exit code."""
        self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait(timeout=60)

    def finish(self, timeout: float = 300.0) -> int:
        return self.proc.wait(timeout=timeout)

    def output(self) -> str:
        try:
            while True:
                line = self._queue.get(timeout=1)
                if line is None:
                    break
                self.lines.append(line)
        except queue.Empty:
            pass
        return "\n".join(self.lines)


def line_seen(text: str):
    """A condition: some output line contains ``text``."""
    return lambda lines: any(text in line for line in lines)

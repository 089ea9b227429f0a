"""The loop's iteration 0 with ``loop.initial_policy: scripted``."""

from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.runs.loop import run_training

from .conftest import tiny_settings


def test_the_loop_seeds_its_buffer_with_scripted_episodes(tmp_path):
    settings = tiny_settings(
        tmp_path / "run",
        family="juggler_balance",
        initial_episodes=2,
        initial_policy="scripted",
        initial_noise=0.0,
    )
    run_training(**settings)
    buffer = EpisodeBuffer.load(tmp_path / "run" / "buffer.npz")
    # the tiny settings cap episodes at 40 steps; scripted control keeps the ball for all of them
    assert buffer.num_episodes == 2 + 2  # scripted, then one MPC iteration
    assert [len(buffer.episode(i)["reward"]) for i in range(2)] == [40, 40]

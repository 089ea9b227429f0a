"""`evaluation/transfer.py`: the rows of the transfer study, on a tiny budget."""

import dataclasses

import numpy as np
import pytest

from mbmeta.evaluation import transfer
from mbmeta.evaluation.transfer import TransferRow, transfer_study

DATA = {"context_length": 4, "target_length": 3, "batch_size": 16, "samples_per_epoch": 32}


def test_transfer_rows_compare_zero_shot_finetuned_and_scratch_on_the_same_data(
    pendulum, pendulum_buffer, make_tiny_module, fast_agent, monkeypatch
):
    seen = {"finetune": [], "scratch": []}
    for name, key in (("finetune", "finetune"), ("train_from_scratch", "scratch")):
        real = getattr(transfer, name)

        def spy(module, buffer, real=real, key=key, **kwargs):
            seen[key].append(buffer)
            return real(module, buffer, **kwargs)

        monkeypatch.setattr(transfer, name, spy)
    module = make_tiny_module(pendulum_buffer)
    task = pendulum.validate({"mass": 0.4, "length": 1.6})
    agent = dataclasses.replace(fast_agent, horizon=1)  # five closed-loop evaluations: the cheapest planning
    rows = transfer_study(module, pendulum, task, episode_counts=(2, 1, 2), epochs=1, eval_episodes=1,
                          agent=agent, data=DATA, seed=0, log=lambda line: None)  # fmt: skip

    assert [(r.method, r.episodes) for r in rows] == [
        ("zero-shot", 0), ("finetune", 1), ("scratch", 1), ("finetune", 2), ("scratch", 2),
    ]  # fmt: skip
    for r in rows:
        assert len(r.returns) == 1 and np.isfinite(r.returns).all()
        assert len(r.lengths) == 1 and 1 <= r.lengths[0] <= pendulum.episode_steps  # the episode's steps
        assert len(r.successes) == 1 and isinstance(r.successes[0], bool)  # pendulum defines success (upright)
        assert r.error_h1 >= 0 and r.error_hmax >= 0 and np.isfinite([r.error_h1, r.error_hmax]).all()
    one, two = seen["finetune"]
    assert [b.num_episodes for b in (one, two)] == [1, 2]
    assert np.array_equal(one.field("obs"), two.first(1).field("obs"))  # the smaller count is a prefix
    for tuned_on, scratch_on in zip(seen["finetune"], seen["scratch"], strict=True):
        for name in ("obs", "action", "reward", "next_obs"):
            assert np.array_equal(tuned_on.field(name), scratch_on.field(name))
    assert all(tuple(b.task(e).as_dict().values()) == (0.4, 1.6) for b in (one, two) for e in range(b.num_episodes))


def test_transfer_needs_at_least_one_episode(pendulum, pendulum_buffer, make_tiny_module):
    task = pendulum.validate({"mass": 0.4, "length": 1.6})
    with pytest.raises(ValueError, match=r"episode counts must be >= 1, got \[0, 2\]"):
        transfer_study(make_tiny_module(pendulum_buffer), pendulum, task, episode_counts=(0, 2))


def test_a_transfer_row_summarises_its_returns():
    row = TransferRow("finetune", 5, (1.0, 3.0), 0.1, 0.4)
    assert row.mean == 2.0 and row.std == 1.0
    assert np.isnan(row.mean_length) and row.success_rate is None  # nothing recorded


def test_a_transfer_row_summarises_lengths_and_success():
    row = TransferRow("finetune", 5, (1.0, 3.0), 0.1, 0.4, lengths=(250, 150), successes=(True, False))
    assert row.mean_length == 200.0 and row.success_rate == 0.5
    undefined = TransferRow("scratch", 5, (1.0,), 0.1, 0.4, lengths=(200,), successes=(None,))
    assert undefined.success_rate is None  # the family defines no success

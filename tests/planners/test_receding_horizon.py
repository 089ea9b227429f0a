"""The receding-horizon helper: shift the warm start (and iCEM's carry) by one step between control steps."""

import torch

from mbmeta.planners import CEMPlanner, ICEMPlanner, RecedingHorizon, shift_plan


def test_shift_drops_the_first_step_and_appends_the_fill():
    plans = torch.arange(2 * 3 * 2, dtype=torch.float32).reshape(2, 3, 2)
    shifted = shift_plan(plans, torch.tensor([9.0, 8.0]))
    assert torch.equal(shifted[:, :2], plans[:, 1:])
    assert torch.equal(shifted[:, 2], torch.tensor([[9.0, 8.0], [9.0, 8.0]]))
    assert torch.equal(plans, torch.arange(12, dtype=torch.float32).reshape(2, 3, 2))  # input not mutated


def test_shift_works_on_a_carry_of_candidates():
    carry = torch.ones(2, 4, 3, 1)
    shifted = shift_plan(carry, torch.zeros(1))
    assert shifted.shape == (2, 4, 3, 1) and (shifted[..., -1, :] == 0).all() and (shifted[..., :-1, :] == 1).all()


def _target_objective(target):
    # returns [B, N]: minus the squared distance of every action to a target (a per-env constant plan is optimal)
    def objective(actions):
        return -((actions - target[:, None, None, :]) ** 2).sum(dim=(-1, -2))

    return objective


def test_the_next_call_starts_from_the_shifted_plan():
    planner = CEMPlanner([-1.0], [1.0], population=64, elites=8, iterations=3)
    mpc = RecedingHorizon(planner, horizon=4, batch_size=2, seed=0)
    result = mpc.plan(_target_objective(torch.tensor([[0.5], [-0.5]])))
    assert torch.equal(mpc.warm_start[:, :3], result.actions[:, 1:])
    assert torch.equal(mpc.warm_start[:, 3], torch.zeros(2, 1))  # the centre of the bounds


def test_planning_converges_over_control_steps_and_reset_starts_afresh():
    target = torch.tensor([[0.6], [-0.4]])
    planner = CEMPlanner([-1.0], [1.0], population=32, elites=4, iterations=1, init_std=0.5)
    mpc = RecedingHorizon(planner, horizon=5, batch_size=2, seed=0)
    first = mpc.plan(_target_objective(target)).actions[:, 0]
    for _ in range(10):
        last = mpc.plan(_target_objective(target)).actions[:, 0]
    assert ((last - target).abs() < (first - target).abs()).all()  # the warm start carries the progress over
    mpc.reset(torch.tensor([True, False]))
    assert torch.equal(mpc.warm_start[0], torch.zeros(5, 1)) and not torch.equal(mpc.warm_start[1], torch.zeros(5, 1))


def test_icem_gets_its_carry_back_shifted():
    planner = ICEMPlanner([-1.0], [1.0], population=32, elites=4, iterations=2)
    mpc = RecedingHorizon(planner, horizon=6, batch_size=1, seed=0)
    assert mpc.carry is None
    mpc.plan(_target_objective(torch.tensor([[0.3]])))
    assert mpc.carry is not None and mpc.carry.shape[0] == 1 and mpc.carry.shape[2:] == (6, 1)
    assert (mpc.carry[:, :, -1] == 0).all()  # shifted: the new last step is the centre


def test_the_agent_shifts_with_the_same_helper(monkeypatch):
    import mbmeta.control.agent as agent_module

    calls = []
    monkeypatch.setattr(agent_module, "shift_plan", lambda plans, fill: calls.append(plans.shape) or plans)
    agent = agent_module.MPCAgent.__new__(agent_module.MPCAgent)
    agent.low, agent.high = torch.zeros(1), torch.ones(1)
    agent._shift(torch.zeros(1, 3, 1))
    assert calls == [(1, 3, 1)]

"""Step 1 of the diagnosis: which planner settings balance the Juggler for 500 steps with MuJoCo as a perfect model?

iCEM (mbmeta's ``ICEMPlanner`` through ``RecedingHorizon``) plans with the environment's own MuJoCo model (its task
applied), every candidate simulated from the environment's exact full physics state by ``mujoco.rollout``. Each
planned action is held for ``--repeat`` environment steps (control at 50 / repeat Hz); the horizon is given in
seconds. The return of a candidate is the family's exact reward summed over the 50 Hz steps it covers, masked
after the ball is lost (as ``RolloutObjective`` does), plus ``--terminal_weight`` × a terminal value of the last
state (``--terminal_value``, e.g. ``mbmeta.envs.juggler:bounce_landing_value``) where the ball is still kept, as the
agent adds it. Train tasks by default; ``--split validation`` or ``test`` plans on ``evaluate``'s balanced tasks
(``--tasks 16``, task seed 0) as a reference of what a perfect model allows there, with the family's success.

Usage (one line per setting)::

    python experiments/juggler_diagnosis/diagnostics/true_model_planner.py --repeat 1 --horizon 0.3 \
        --population 64 --iterations 3 --tasks 4 --steps 500
"""

from __future__ import annotations

import argparse
import time

import mujoco
import numpy as np
import torch
from mujoco import rollout

from mbmeta.envs import get_family
from mbmeta.envs.juggler import FRAME_SKIP, to_paddle_frame_obs
from mbmeta.evaluation.episodes import evaluation_tasks
from mbmeta.imports import import_object
from mbmeta.planners import ICEMPlanner, RecedingHorizon


def balance_time(
    family,
    task,
    *,
    steps: int,
    repeat: int,
    horizon_s: float,
    population: int,
    iterations: int,
    seed: int,
    actuation: str = "torque",
    servo_span: float | None = None,
    terminal_value=None,
    terminal_weight: float = 1.0,
    episode: dict | None = None,
) -> tuple[int, float, float]:
    """Balance time, mean reward and planning cost of one episode under iCEM with the true model.

    Returns the env steps (50 Hz) the ball was kept (of ``steps``), the mean reward per step over ``steps`` (a
    lost ball earns 0 from then on) and the seconds spent per planning call. ``episode``, if given, receives the
    episode's ``next_obs [L, O]`` and ``terminated [L]`` (for the family's success and measures).
    """
    span = {} if servo_span is None else {"servo_span": servo_span}
    env = family.make_env(max_episode_steps=steps, actuation=actuation, action_repeat=1, **span)  # repeat done here
    env.reset(seed=seed, options={"task": task})
    base = env.unwrapped
    model, data = base.model, base.data
    scratch = mujoco.MjData(model)
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    state = np.zeros(mujoco.mj_stateSize(model, spec))
    nq, nv = model.nq, model.nv
    h = max(1, round(horizon_s / (0.02 * repeat)))  # planned actions
    sub = FRAME_SKIP * repeat  # MuJoCo steps per planned action
    elites = max(4, population // 8)
    mpc = RecedingHorizon(
        ICEMPlanner(
            env.action_space.low, env.action_space.high, population=population, elites=elites, iterations=iterations
        ),
        h,
        seed=seed,
    )

    def objective(actions: torch.Tensor) -> torch.Tensor:  # [1, N, H, A] -> [1, N]
        n = actions.shape[1]
        ctrl = np.repeat(actions[0].clamp(-1, 1).double().numpy(), sub, axis=1)  # [N, H * sub, A]
        states, _ = rollout.rollout(model, scratch, np.tile(state, (n, 1)), ctrl)
        fine = states[:, FRAME_SKIP - 1 :: FRAME_SKIP]  # [N, H * repeat, nstate] after each 50 Hz step
        qpos, qvel = fine[..., 1 : 1 + nq], fine[..., 1 + nq : 1 + nq + nv]
        obs = np.concatenate([qpos[..., :3], qvel[..., :3], _pose(qpos[..., :3]), qpos[..., 3:5], qvel[..., 3:6]], -1)
        if getattr(family, "ball_frame", "world") == "paddle":  # the family's reward reads its own observation
            obs = to_paddle_frame_obs(obs)
        obs_t = torch.as_tensor(obs, dtype=torch.float32)
        act = torch.as_tensor(np.repeat(actions[0].numpy(), repeat, axis=1))
        reward = family.reward(obs_t, act, obs_t)  # [N, T]; depends on (action, next_obs) only
        lost = family.terminated(obs_t, act, obs_t)
        alive_before = torch.cumprod(torch.cat([torch.ones(n, 1), (~lost[:, :-1]).float()], 1), 1)
        value = (reward * alive_before).sum(1)
        if terminal_value is not None:  # the last state's value where the ball is still kept, as the agent adds it
            kept_to_end = alive_before[:, -1] * (~lost[:, -1]).float()
            value = value + terminal_weight * kept_to_end * terminal_value(obs_t[:, -1])
        return value[None]

    kept, plan_time, calls, total = steps, 0.0, 0, 0.0
    action, t = None, 0
    while t < steps:
        if t % repeat == 0:
            mujoco.mj_getState(model, data, state, spec)
            start = time.perf_counter()
            action = mpc.plan(objective).actions[0, 0].numpy()
            plan_time, calls = plan_time + time.perf_counter() - start, calls + 1
        next_obs, reward, terminated, truncated, _ = env.step(action)
        if episode is not None:
            episode.setdefault("next_obs", []).append(next_obs)
            episode.setdefault("terminated", []).append(terminated)
        total += reward
        t += 1
        if terminated:
            kept = t
            break
        if truncated:
            break
    env.close()
    if episode is not None:
        episode.update({k: np.asarray(v) for k, v in episode.items()})
    return kept, total / steps, plan_time / max(calls, 1)


def _pose(q: np.ndarray) -> np.ndarray:
    from mbmeta.envs.juggler import paddle_pose

    return paddle_pose(q)


def main(argv: list[str] | None = None) -> None:
    """Print the balance time on each train task for one planner setting."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--horizon", type=float, default=0.3, help="seconds")
    p.add_argument("--population", type=int, default=64)
    p.add_argument("--iterations", type=int, default=3)
    p.add_argument("--tasks", type=int, default=4)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--family", default="juggler_balance")
    p.add_argument("--actuation", default="torque", choices=["torque", "servo"])
    p.add_argument("--servo_span", type=float, default=None, help="rad of joint target per unit action (servo)")
    p.add_argument("--split", default="train", choices=["train", "validation", "test"])
    p.add_argument("--terminal_value", default=None, help="package.module:function, as --agent.terminal_value")
    p.add_argument("--terminal_weight", type=float, default=1.0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    family = get_family(args.family)
    if args.split == "train":
        tasks = family.sample(np.random.default_rng(123), args.tasks, "train")
    else:  # the tasks `mbmeta evaluate --split S --tasks N --task_design balanced --seed 0` runs
        tasks = evaluation_tasks(family, args.split, args.tasks, seed=0, design="balanced")
    value = None if args.terminal_value is None else import_object(args.terminal_value, "--terminal_value")
    kept, rewards, successes = [], [], []
    for i, task in enumerate(tasks):
        episode: dict = {}
        k, r, dt = balance_time(
            family,
            task,
            steps=args.steps,
            repeat=args.repeat,
            horizon_s=args.horizon,
            population=args.population,
            iterations=args.iterations,
            seed=i,
            actuation=args.actuation,
            servo_span=args.servo_span,
            terminal_value=value,
            terminal_weight=args.terminal_weight,
            episode=episode,
        )
        kept.append(k)
        rewards.append(r)
        success = family.success(episode) if k == args.steps else False  # a cut-short episode never succeeds
        successes.append(bool(success))
        measures = " ".join(f"{n} {v:g}" for n, v in family.measures(episode).items())
        print(
            f"task {i} {task.as_dict()}: kept {k}/{args.steps}, reward {r:.3f}/step, success {success} {measures} "
            f"({dt * 1e3:.0f} ms/plan)",
            flush=True,
        )
    print(
        f"{args.family} {args.split} {args.actuation} span {args.servo_span} "
        f"repeat {args.repeat} horizon {args.horizon}s pop {args.population} it {args.iterations} "
        f"value {args.terminal_value} x{args.terminal_weight:g}: "
        f"mean {np.mean(kept):.1f}, full {sum(k == args.steps for k in kept)}/{len(kept)}, "
        f"success {sum(successes)}/{len(successes)}, reward {np.mean(rewards):.3f}/step",
        flush=True,
    )


if __name__ == "__main__":
    main()

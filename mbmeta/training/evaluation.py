"""Evaluate trained models on held-out tasks: closed-loop returns, multi-step prediction error, videos.

Every method is evaluated with the same tasks, environment seeds, planner settings and test data, so that the
numbers compare.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from mbmeta.control.collection import RandomPolicy, collect_episodes
from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.data.segments import SegmentSampler, gather_segments, to_meta_batch
from mbmeta.envs.family import Choice, Split, TaskFamily, TaskParams
from mbmeta.training.loop import make_agent, realised_horizon_return
from mbmeta.training.module import MetaDynamicsModule
from mbmeta.training.progress import episode_progress
from mbmeta.training.settings import AgentSettings


@dataclass(frozen=True)
class EpisodeRecord:
    """One evaluation episode.

    Attributes:
        method: the model's name (its adaptation method, or a label given by the caller).
        task_id: index of the task in the evaluated task list.
        task: the task parameters.
        seed: the environment seed of the episode.
        episode_return: sum of rewards.
        length: steps.
        terminated: ended in a terminal state (False: time limit).
        success: reached the family's goal (``TaskFamily.success``); None where the family defines none.
    """

    method: str
    task_id: int
    task: dict[str, float]
    seed: int
    episode_return: float
    length: int
    terminated: bool
    success: bool | None = None


def evaluation_tasks(family: TaskFamily, split: Split = "test", count: int | None = None, seed: int = 0) -> list:
    """The tasks to evaluate on: every value combination of a discrete split, else ``count`` sampled tasks.

    Args:
        family: the task family.
        split: ``"test"`` (out of distribution) or ``"train"``.
        count: number of tasks to sample when the split has intervals (or to subsample a grid, evenly);
            None keeps the whole grid (and samples 8 tasks from a continuous split).
        seed: seeds sampling.

    Returns:
        A list of :class:`TaskParams`, in a fixed order.
    """
    regions = family.regions(split)
    if all(isinstance(region[name], Choice) for region in regions for name in family.parameter_names):
        grid: dict[tuple, TaskParams] = {}
        for region in regions:
            values = [region[name].values for name in family.parameter_names]
            for combo in itertools.product(*values):
                grid.setdefault(combo, TaskParams(tuple(zip(family.parameter_names, combo, strict=True))))
        tasks = list(grid.values())
        if count is not None and count < len(tasks):
            picks = np.linspace(0, len(tasks) - 1, count).round().astype(int)
            tasks = [tasks[i] for i in picks]
        return tasks
    return family.sample(np.random.default_rng(seed), 8 if count is None else count, split)


class Evaluation(NamedTuple):
    """What :func:`evaluate_agent` returns.

    Attributes:
        records: one :class:`EpisodeRecord` per episode, sorted by task and seed.
        plan_stats: the agent's planning figures over all episodes (``plan/ms_per_call``, ... see
            :meth:`mbmeta.control.plan_stats.PlanStats.summary`).
    """

    records: list[EpisodeRecord]
    plan_stats: dict[str, float]


def evaluate_agent(
    module: MetaDynamicsModule,
    family: TaskFamily,
    tasks: Sequence[TaskParams],
    *,
    method: str | None = None,
    episodes_per_task: int = 1,
    agent: AgentSettings | None = None,
    num_envs: int = 4,
    seed: int = 0,
) -> Evaluation:
    """Closed-loop returns and planning statistics of the MPC agent with this model on each task.

    Every task gets ``episodes_per_task`` episodes (environment seeds ``seed``, ``seed + 1``, ...); all episodes run
    ``num_envs`` at a time through one agent, the planner batched over them.
    """
    agent = agent or AgentSettings()
    method = method or module.hparams.adaptation
    mpc = make_agent(module.dynamics, family, agent, seed=seed)
    launches = [(task_id, rep) for rep in range(episodes_per_task) for task_id in range(len(tasks))]
    with episode_progress(f"evaluating {method}", len(launches)) as on_episode:
        collection = collect_episodes(
            mpc,
            len(launches),
            family=family,
            tasks=[tasks[task_id] for task_id, _ in launches],
            num_envs=min(num_envs, len(launches)),
            seed=seed,
            pass_task=module.hparams.adaptation == "oracle",
            on_episode=on_episode,
        )
    records = []
    for stats in collection.episodes:
        task_id, rep = launches[stats.launch]
        records.append(
            EpisodeRecord(
                method=method,
                task_id=task_id,
                task=dict(stats.task),
                seed=seed + rep,
                episode_return=float(stats.episode_return),
                length=int(stats.length),
                terminated=bool(stats.terminated),
                success=stats.success,
            )
        )
    plan_stats = {
        **mpc.plan_stats.summary("plan/"),
        "plan/realised_return_mean": realised_horizon_return(collection.episodes, agent),
    }
    return Evaluation(sorted(records, key=lambda r: (r.task_id, r.seed)), plan_stats)


def evaluate_returns(
    module: MetaDynamicsModule, family: TaskFamily, tasks: Sequence[TaskParams], **kwargs: Any
) -> list[EpisodeRecord]:
    """The episode records of :func:`evaluate_agent` (same arguments)."""
    return evaluate_agent(module, family, tasks, **kwargs).records


def test_data(
    family: TaskFamily,
    tasks: Sequence[TaskParams],
    episodes_per_task: int = 1,
    seed: int = 0,
    *,
    min_length: int = 0,
    max_extra_rounds: int = 4,
) -> EpisodeBuffer:
    """Random-action episodes on the given tasks: shared data on which every model's prediction error is measured.

    Args:
        family: the task family.
        tasks: the tasks; each gets ``episodes_per_task`` episodes.
        episodes_per_task: episodes per task.
        seed: seeds the actions and environments.
        min_length: episodes that terminate early (a juggler dropping its ball) may all be too short for an error
            segment of K + H steps; while some task has no episode of at least ``min_length`` steps, one more
            episode is collected for each such task, for at most ``max_extra_rounds`` rounds (the extra episodes
            stay in the buffer: every episode counts, long or short).
        max_extra_rounds: bound on those rounds.
    """
    env = family.make_env()
    space = env.action_space
    env.close()
    launches = [t for t in tasks for _ in range(episodes_per_task)]
    buffer = collect_episodes(
        RandomPolicy(space, seed=seed), len(launches), family=family, tasks=launches, num_envs=4, seed=seed
    ).buffer
    for extra in range(1, max_extra_rounds + 1):
        long_episodes = np.flatnonzero(buffer.episode_lengths >= min_length)
        measurable = {task_label(buffer.task(int(e)).as_dict()) for e in long_episodes}
        short = [t for t in tasks if task_label(t.as_dict()) not in measurable]
        if not short:
            break
        round_seed = seed + 100_003 * extra  # fresh actions and env seeds for each round
        buffer.extend(
            collect_episodes(
                RandomPolicy(space, seed=round_seed),
                len(short),
                family=family,
                tasks=short,
                num_envs=4,
                seed=round_seed,
            ).buffer
        )
    return buffer


def prediction_error(
    module: MetaDynamicsModule,
    buffer: EpisodeBuffer,
    *,
    context_length: int = 10,
    horizon: int = 10,
    segments: int = 512,
    seed: int = 0,
) -> np.ndarray:
    """``[H]`` open-loop multi-step prediction error at horizons 1..H on ``buffer``'s episodes.

    The error is squared error in units of ``buffer``'s own per-dimension observation std (not the model's
    normaliser), so every model measured on the same buffer is measured in the same units, whatever data it was
    trained on.
    """
    return _segment_error(module, buffer, None, context_length, horizon, segments, seed, observation_scale(buffer))


def prediction_error_by_task(
    module: MetaDynamicsModule,
    buffer: EpisodeBuffer,
    *,
    context_length: int = 10,
    horizon: int = 10,
    segments_per_task: int = 128,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """``{task label: [H] error}``: :func:`prediction_error` on each task's episodes of ``buffer`` separately.

    The units are still the whole buffer's observation std, so tasks compare with each other and with the overall
    curve. Squared errors are heavy-tailed (one hard task can dominate a mean over tasks); the per-task curves and
    their median show how the error is spread. Tasks none of whose episodes is long enough for a segment
    (``context_length + horizon`` steps; e.g. a juggler task whose random-action episodes all drop the ball early)
    are left out of the dict rather than failing the whole measurement.
    """
    scale = observation_scale(buffer)
    groups: dict[str, list[int]] = defaultdict(list)
    lengths = buffer.episode_lengths
    for episode in range(buffer.num_episodes):
        if lengths[episode] >= context_length + horizon:
            groups[task_label(buffer.task(episode).as_dict())].append(episode)
    return {
        label: _segment_error(
            module, buffer, np.array(episodes), context_length, horizon, segments_per_task, seed, scale
        )
        for label, episodes in groups.items()
    }


@torch.no_grad()
def _segment_error(
    module: MetaDynamicsModule,
    buffer: EpisodeBuffer,
    episodes: np.ndarray | None,
    context_length: int,
    horizon: int,
    segments: int,
    seed: int,
    scale: torch.Tensor,
) -> np.ndarray:
    sampler = SegmentSampler(buffer.episode_starts, context_length, horizon, episodes=episodes)
    index = sampler.sample_fixed(np.random.default_rng(seed), segments)
    batch = to_meta_batch(gather_segments(buffer, index))
    device = next(module.parameters()).device
    batch = type(batch)(*(_to(x, device) for x in batch))
    return module.dynamics.multi_step_error(batch, scale=scale.to(device)).cpu().numpy()


def observation_scale(buffer: EpisodeBuffer, min_std: float = 1e-6) -> torch.Tensor:
    """``[O]`` float32 std of each observation dimension over ``buffer`` (1 where constant, as normalisers do)."""
    std = buffer.statistics(min_std=min_std)["obs_std"]  # clamped to min_std; the normaliser's rule (1) instead:
    return torch.where(std <= min_std, torch.ones_like(std), std)


def _to(value: Any, device: torch.device) -> Any:
    if value is None:
        return None
    if isinstance(value, tuple):
        return type(value)(*(_to(v, device) for v in value))
    return value.to(device)


def record_video(
    module: MetaDynamicsModule,
    family: TaskFamily,
    task: TaskParams,
    path: str | Path,
    *,
    agent: AgentSettings | None = None,
    seed: int = 0,
    size: int = 240,
    fps: int = 20,
) -> Path:
    """Film one episode of the MPC agent on ``task`` as a GIF (offscreen rendering; needs ``MUJOCO_GL=egl``)."""
    import imageio.v3 as iio

    mpc = make_agent(module.dynamics, family, agent or AgentSettings(), seed=seed)
    env = family.make_env(render_mode="rgb_array", width=size, height=size)
    oracle = module.hparams.adaptation == "oracle"
    task_row = task.as_array()[None]
    try:
        obs, _ = env.reset(seed=seed, options={"task": task})
        mpc.reset(1)
        frames = [env.render()]
        done = False
        while not done:
            action = mpc.act(obs[None], task=task_row if oracle else None)[0]
            next_obs, reward, terminated, truncated, _ = env.step(action)
            mpc.observe(obs[None], action[None], next_obs[None], reward=np.array([reward]))
            frames.append(env.render())
            obs, done = next_obs, terminated or truncated
    finally:
        env.close()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, np.stack(frames), duration=1000 / fps, loop=0)
    return path


def summarise(records: Sequence[EpisodeRecord]) -> dict[str, dict[str, tuple[float, float, int]]]:
    """``method -> {task label or "overall" -> (mean return, std, episodes)}``."""
    groups: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        groups[r.method][task_label(r.task)].append(r.episode_return)
        groups[r.method]["overall"].append(r.episode_return)
    return {
        method: {label: (float(np.mean(v)), float(np.std(v)), len(v)) for label, v in by_task.items()}
        for method, by_task in groups.items()
    }


def success_rates(records: Sequence[EpisodeRecord]) -> dict[str, dict[str, float]]:
    """``method -> {task label or "overall" -> fraction of successful episodes}``.

    Only methods whose episodes define success appear (empty when the family defines none).
    """
    groups: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        if r.success is not None:
            groups[r.method][task_label(r.task)].append(r.success)
            groups[r.method]["overall"].append(r.success)
    return {method: {label: float(np.mean(v)) for label, v in by_task.items()} for method, by_task in groups.items()}


def task_label(task: dict[str, float]) -> str:
    """Short text for a task: ``mass=0.2 length=1.6``."""
    return " ".join(f"{k}={v:g}" for k, v in task.items())


def write_results(records: Sequence[EpisodeRecord], out_dir: str | Path, extra: dict[str, Any] | None = None) -> None:
    """Write ``results.json`` (records, summary, extra) and ``results.csv`` (one row per episode) to ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "episodes": [asdict(r) for r in records],
        "summary": {
            m: {k: dict(zip(("mean", "std", "n"), v, strict=True)) for k, v in s.items()}
            for m, s in summarise(records).items()
        },
        "success_rate": success_rates(records),
        **(extra or {}),
    }
    (out / "results.json").write_text(json.dumps(payload, indent=2, default=_json_default))
    names = sorted({k for r in records for k in r.task})
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "task_id", *names, "seed", "episode_return", "length", "terminated", "success"])
        for r in records:
            row = [r.method, r.task_id, *(r.task.get(n, math.nan) for n in names)]
            success = "" if r.success is None else int(r.success)  # empty: the family defines no success
            writer.writerow([*row, r.seed, f"{r.episode_return:.4f}", r.length, int(r.terminated), success])


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def plot_prediction_error(curves: dict[str, np.ndarray], path: str | Path, title: str = "") -> Path:
    """Line plot of prediction error against horizon, one line per method (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
    for method, curve in curves.items():
        ax.plot(np.arange(1, len(curve) + 1), curve, marker="o", label=method)
    ax.set_xlabel("prediction horizon (steps)")
    ax.set_ylabel("MSE (units of the test data's obs std)")
    ax.set_yscale("log")
    ax.set_title(title or "multi-step prediction error on test tasks")
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def log_to_wandb(
    out_dir: str | Path,
    records: Sequence[EpisodeRecord],
    config: dict[str, Any],
    plan_stats: dict[str, dict[str, float]] | None = None,
) -> Path:
    """Log an evaluation as a W&B run in ``out_dir``.

    Logged: mean/std return per method, the per-episode table, each method's planner statistics (``plan_stats``:
    method -> ``plan/*`` figures), the prediction-error plot and the videos.

    Offline unless ``WANDB_MODE=online``; returns the run directory (``wandb sync`` it to upload).
    """
    import wandb

    out = Path(out_dir)
    run = wandb.init(project="mbmeta", dir=str(out), job_type="evaluate", config=config)
    try:
        names = sorted({k for r in records for k in r.task})
        columns = ["method", "task_id", *names, "seed", "return", "length", "terminated", "success"]
        table = wandb.Table(columns=columns)
        for r in records:
            table.add_data(r.method, r.task_id, *(r.task.get(n) for n in names), r.seed, r.episode_return, r.length,
                           r.terminated, r.success)  # fmt: skip
        payload: dict[str, Any] = {"evaluate/episodes": table}
        for method, by_task in summarise(records).items():
            payload[f"evaluate/{method}/return_mean"], payload[f"evaluate/{method}/return_std"] = by_task["overall"][:2]
        for method, by_task in success_rates(records).items():
            payload[f"evaluate/{method}/success_rate"] = by_task["overall"]
        for method, stats in (plan_stats or {}).items():
            payload.update({f"evaluate/{method}/{name}": value for name, value in stats.items()})
        plot = out / "prediction_error.png"
        if plot.is_file():
            payload["evaluate/prediction_error"] = wandb.Image(str(plot))
        for video in sorted(out.glob("video_*.gif")):
            payload[f"evaluate/{video.stem}"] = wandb.Video(str(video), format="gif")
        run.log(payload)
    finally:
        run.finish()
    return Path(run.dir).parent

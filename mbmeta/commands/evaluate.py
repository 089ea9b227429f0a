"""``mbmeta evaluate``: run trained agents on the test split and report returns, prediction error and videos.

    mbmeta evaluate --ckpt runs/pendulum-none/model.ckpt runs/pendulum-context/model.ckpt --out results/pendulum

writes ``results.json`` / ``results.csv`` (one row per episode: method, task parameters as ``task.<name>``, seed,
return, length, terminated, success where the family defines it) and ``prediction_error.png`` (multi-step error
against horizon on shared random-action test-task data, one line per method), prints mean ± std (and success
rate) per task and overall, and only then films one episode per method on the first ``--video_tasks`` tasks (2 by
default, ``all`` for every task; each GIF shows the family, method, task and the return so far) and logs everything
to W&B. The agent plans with the settings the first checkpoint's run was trained with, unless ``--config`` /
``--agent.*`` override them; a checkpoint without a run config (``mbmeta fit``) gets a light planner.

    mbmeta evaluate --policy scripted --family juggler_balance_servo --tasks 8 --out results/scripted

evaluates a reference policy instead (``random``: uniform actions seeded by ``--policy_seed``; ``scripted``: the
family's controller without noise) on the same tasks, environment seeds and launches a model would get, and writes
the same ``results.json`` / ``results.csv`` (no prediction error or video: there is no model).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

import numpy as np
from jsonargparse import ActionConfigFile
from rich.console import Console
from rich.table import Table

from mbmeta.commands import configure_threads, one_line_errors
from mbmeta.commands.agent_arguments import CommandParser, agent_settings
from mbmeta.commands.run_config import (
    FIT_CONFIG_FILE,
    LIGHT_AGENT,
    add_train_config_groups,
    fit_run_family,
    parse_with_run_defaults,
    run_config,
)
from mbmeta.commands.wandb_options import add_wandb_arguments, sync_hint, wandb_settings
from mbmeta.control.settings import AgentSettings
from mbmeta.runs.experiment import REFERENCE_POLICIES


def build_parser() -> CommandParser:
    """Arguments of ``mbmeta evaluate``."""
    parser = CommandParser(
        prog="mbmeta evaluate",
        description="Evaluate trained models with the MPC agent on held-out (test-split) tasks: closed-loop returns, "
        "multi-step prediction error and videos, written as JSON, CSV, PNG and GIF.",
        default_meta=False,
    )
    parser.add_argument("--config", action=ActionConfigFile, help="YAML config file(s)")
    parser.add_argument(
        "--ckpt", type=str, nargs="+", default=None, help="checkpoint(s) to evaluate, one per method (or --policy)"
    )
    parser.add_argument(
        "--policy",
        type=Literal[REFERENCE_POLICIES] | None,
        default=None,
        help="evaluate a reference policy instead of checkpoints (needs --family): random (uniform actions) or "
        "scripted (the family's controller, no action noise); returns only, written as a model's are",
    )
    parser.add_argument("--policy_seed", type=int, default=0, help="seeds the random policy (not the environments)")
    parser.add_argument(
        "--labels", type=str, nargs="+", default=None, help="method names (default: adaptation, or the policy)"
    )
    parser.add_argument("--family", type=str | None, default=None, help="task family (default: from the run)")
    parser.add_argument(
        "--split",
        type=str,
        default="test",
        help="split to evaluate on: test, train, validation (families that define one: tasks outside the train range, "
        "disjoint from test, to choose settings on) or a reference-protocol condition",
    )
    parser.add_argument("--tasks", type=int | None, default=None, help="number of tasks (default: whole grid)")
    parser.add_argument(
        "--task_design",
        type=Literal["balanced", "even"],
        default="balanced",
        help="how --tasks subsamples a grid: balanced (each parameter's values equally often, parameters "
        "uncorrelated) or even (evenly spaced grid rows; ties parameters together, as experiments before it used)",
    )
    parser.add_argument("--episodes_per_task", type=int, default=2, help="episodes (env seeds) per task")
    parser.add_argument("--num_envs", type=int, default=4, help="environments stepped together")
    parser.add_argument("--seed", type=int, default=0, help="seeds environments, planning and test data")
    parser.add_argument("--out", type=str, default="results", help="output directory")
    parser.add_argument(
        "--video_tasks",
        type=int | Literal["all"],
        default=2,
        help="film one episode (GIF) per method on each of the first N tasks (a video takes about as long as the "
        "episodes of one task); 0: no videos; all: every task",
    )
    parser.add_argument("--error_horizon", type=int, default=10, help="longest horizon of the prediction-error plot")
    parser.add_argument(
        "--protocol",
        type=Literal["cadm"] | None,
        default=None,
        help="cadm: CaDM's evaluation instead (cadm_* families): the train set and each test condition, "
        "--protocol_episodes episodes each; writes protocol.json/.csv and prints mean ± standard error per condition "
        "with the moderate, extreme and test averages",
    )
    parser.add_argument(
        "--protocol_episodes", type=int | None, default=None, help="episodes per condition (default: CaDM's count)"
    )
    parser.add_argument(
        "--protocol_estimator",
        type=Literal["all", "first_finished"],
        default="all",
        help="all: each condition's episodes run to their end; first_finished: CaDM's test loop, --num_envs "
        "environments restart on new tasks until --protocol_episodes have finished, those under way dropped (where "
        "failures end episodes early, e.g. CartPole, it weighs failed episodes more)",
    )
    parser.add_agent_arguments()
    add_wandb_arguments(parser)
    add_train_config_groups(parser)
    return parser


def family_of_checkpoint(ckpt: str) -> str:
    """The family a checkpoint was trained on: from its run's ``config.json``, else from the buffer beside it.

    Raises:
        FileNotFoundError: no checkpoint at ``ckpt``.
        ValueError: the family cannot be told (pass ``--family``).
    """
    if not Path(ckpt).is_file():
        raise FileNotFoundError(f"checkpoint {ckpt!r} does not exist")
    from mbmeta.data.buffer import EpisodeBuffer

    found = run_config(ckpt)
    family = found[1].get("loop", {}).get("family") if found else None
    if family:
        return family
    family = fit_run_family(ckpt)  # a `mbmeta fit` run: the family its buffer records
    if family:
        return family
    buffer_path = Path(ckpt).with_name("buffer.npz")
    if not buffer_path.is_file():
        raise ValueError(
            f"cannot tell the family of {ckpt!r} (no run config.json, fit {FIT_CONFIG_FILE} with a readable "
            "data.buffer_path, or buffer.npz beside it): pass --family"
        )
    family = EpisodeBuffer.load(buffer_path).family
    if not family:
        raise ValueError(f"{buffer_path} records no family: pass --family")
    return family


def describe_agent(agent: AgentSettings, source: Path | None) -> str:
    """One line: the planner the agent uses and where its settings came from."""
    light = (
        f"light defaults ({LIGHT_AGENT.planner}, H={LIGHT_AGENT.horizon}: no `mbmeta train` run config beside "
        "the checkpoint)"
    )
    if source is None:
        origin = f"{light}, then --config / --agent.*"
    elif source.name == FIT_CONFIG_FILE:
        origin = f"{light}, K from {source}, then --config / --agent.*"
    else:
        origin = f"{source}, then --config / --agent.*"
    terminal = ""
    if agent.terminal_value is not None:
        terminal = f", terminal value {agent.terminal_weight:g} × {agent.terminal_value}"
    if agent.physics is not None:
        terminal += f", acting with physics {agent.physics}"
    return (
        f"agent: {agent.planner}, H={agent.horizon}, K={agent.context_length}, "
        f"{agent.propagation} (P={agent.particles}), {agent.precision}{terminal}; settings from {origin}"
    )


def print_summary(records, console: Console | None = None, title: str = "episode return (mean ± std)") -> None:
    """Print mean ± std of the return per task (rows) and method (columns), and overall.

    Then the success rate, laid out the same way, where the family defines success, and the mean of each of the
    family's measures per method.
    """
    from mbmeta.evaluation.reports import measure_means, success_rates, summarise

    console = console or Console()
    summary = summarise(records)
    methods = list(summary)
    labels = [label for label in next(iter(summary.values())) if label != "overall"] + ["overall"]
    table = Table(title=title)
    table.add_column("task")
    for method in methods:
        table.add_column(method, justify="right")
    for label in labels:
        cells = []
        for method in methods:
            mean, std, n = summary[method].get(label, (float("nan"), float("nan"), 0))
            cells.append(f"{mean:.1f} ± {std:.1f}")
        table.add_row(label, *cells, style="bold" if label == "overall" else None)
    console.print(table)
    rates = success_rates(records)
    if rates:
        table = Table(title="success rate")
        table.add_column("task")
        for method in rates:
            table.add_column(method, justify="right")
        for label in labels:
            cells = [f"{100 * rates[m].get(label, float('nan')):.0f} %" for m in rates]
            table.add_row(label, *cells, style="bold" if label == "overall" else None)
        console.print(table)
    means = measure_means(records)
    if means:
        names = sorted({name for by_name in means.values() for name in by_name})
        table = Table(title="mean per episode of the family's measures")
        table.add_column("measure")
        for method in means:
            table.add_column(method, justify="right")
        for name in names:
            table.add_row(name, *(f"{means[m].get(name, float('nan')):.2f}" for m in means))
        console.print(table)


@one_line_errors("evaluate")
def run(argv: list[str]) -> int:
    """Parse ``argv``, evaluate, write and print the results, then film and log; returns the exit code."""
    from mbmeta.envs import get_family
    from mbmeta.evaluation.episodes import evaluation_tasks
    from mbmeta.evaluation.reports import log_to_wandb, plot_prediction_error, write_results

    cfg, agent_source = parse_with_run_defaults(build_parser(), argv)
    configure_threads()
    if cfg.policy is not None:
        return _evaluate_reference_policy(cfg)
    if cfg.ckpt is None:
        raise ValueError("--ckpt is required (or --policy random|scripted with --family)")
    if cfg.labels is not None and len(cfg.labels) != len(cfg.ckpt):
        raise ValueError(f"--labels gives {len(cfg.labels)} names for {len(cfg.ckpt)} checkpoints")
    if isinstance(cfg.video_tasks, int) and cfg.video_tasks < 0:
        raise ValueError(f"--video_tasks must be >= 0 or 'all', got {cfg.video_tasks}")
    family = get_family(cfg.family or family_of_checkpoint(cfg.ckpt[0]))
    agent = agent_settings(cfg)
    if cfg.protocol == "cadm":
        from mbmeta.evaluation.protocol import run_protocol
        from mbmeta.runs.training_data import agent_latent_range

        console = Console()
        console.print(describe_agent(agent, agent_source))
        run_protocol(
            cfg.ckpt, cfg.labels, family, agent, episodes=cfg.protocol_episodes, num_envs=cfg.num_envs,
            seed=cfg.seed, out=cfg.out, log=lambda text: console.print(text, markup=False, soft_wrap=True),
            latent_range_of=lambda ckpt, module: agent_latent_range(ckpt, module.dynamics, agent),
            estimator=cfg.protocol_estimator,
        )  # fmt: skip
        return 0
    tasks = evaluation_tasks(family, cfg.split, cfg.tasks, seed=cfg.seed, design=cfg.task_design)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    console = Console()
    console.print(f"evaluating {len(cfg.ckpt)} model(s) on {len(tasks)} {cfg.split} tasks of {family.name}")
    console.print(describe_agent(agent, agent_source))
    modules, records, curves, task_curves, plan_stats = _evaluate_methods(cfg, family, tasks, agent, console)
    settings = {**_task_settings(cfg, family), "ckpt": cfg.ckpt, "agent": agent.as_config()}
    extra = {"prediction_error": curves, "prediction_error_by_task": task_curves, "plan_stats": plan_stats}
    ranges = {label: bounds.as_dict() for label, (_, bounds) in modules.items() if bounds is not None}
    if ranges:  # agent.bound_latent: each model's code range, measured on its training data
        extra["latent_range"] = ranges
    # Results first: an interrupted or failing video step loses no number.
    write_results(records, out, extra={**extra, **settings})
    plot_prediction_error(curves, out / "prediction_error.png", title=f"{family.name}: {cfg.split} tasks")
    console.print(f"results written to {out}/ (results.json, results.csv, prediction_error.png)")
    print_summary(records, console)
    _print_prediction_error(curves, task_curves, cfg.error_horizon, len(tasks), console)
    filmed = tasks if cfg.video_tasks == "all" else tasks[: cfg.video_tasks]
    captions = _film(modules, family, filmed, agent, out, cfg.seed, console)
    wandb = wandb_settings(cfg)
    log_to_wandb(out, records, config=settings, plan_stats=plan_stats, init=wandb.init_kwargs(), captions=captions)
    hint = sync_hint(out, wandb)
    if hint:
        console.print(hint, markup=False)
    return 0


def _task_settings(cfg, family) -> dict[str, str]:
    """The family, split and (for a subsample of a grid) task design, as ``results.json`` records them."""
    settings = {"family": family.name, "split": cfg.split}
    if cfg.tasks is not None:
        settings["task_design"] = cfg.task_design  # which subsample of the grid (the tasks are in the records)
    return settings


def _evaluate_reference_policy(cfg) -> int:
    """``--policy``: the policy's episodes on the tasks, seeds and launches a model would get, written the same way.

    No prediction error, plot or video (there is no model); logged to W&B like a model's evaluation.
    """
    from mbmeta.control.factory import make_reference_policy
    from mbmeta.envs import get_family
    from mbmeta.evaluation.episodes import evaluate_policy, evaluation_tasks
    from mbmeta.evaluation.reports import log_to_wandb, write_results

    if cfg.ckpt is not None:
        raise ValueError("--ckpt and --policy do not go together: evaluate checkpoints or a reference policy")
    if cfg.family is None:
        raise ValueError(f"--policy {cfg.policy} needs --family (there is no checkpoint to read it from)")
    if cfg.protocol is not None:
        raise ValueError(f"--policy does not go with --protocol {cfg.protocol} (it evaluates checkpoints only)")
    if cfg.labels is not None and len(cfg.labels) != 1:
        raise ValueError(f"--labels gives {len(cfg.labels)} names for one policy")
    family = get_family(cfg.family)
    policy = make_reference_policy(family, cfg.policy, seed=cfg.policy_seed)
    label = cfg.labels[0] if cfg.labels else cfg.policy
    tasks = evaluation_tasks(family, cfg.split, cfg.tasks, seed=cfg.seed, design=cfg.task_design)
    console = Console()
    episodes = len(tasks) * cfg.episodes_per_task
    console.print(
        f"evaluating the {cfg.policy} policy (policy seed {cfg.policy_seed}) as {label!r} on {len(tasks)} "
        f"{cfg.split} tasks of {family.name}: {episodes} episodes, {cfg.num_envs} at a time",
        markup=False,
    )
    records = evaluate_policy(
        policy, family, tasks, method=label, episodes_per_task=cfg.episodes_per_task, num_envs=cfg.num_envs,
        seed=cfg.seed,
    )  # fmt: skip
    settings = {**_task_settings(cfg, family), "policy": cfg.policy, "policy_seed": cfg.policy_seed}
    out = Path(cfg.out)
    write_results(records, out, extra=settings)
    console.print(f"results written to {out}/ (results.json, results.csv)", markup=False)
    print_summary(records, console)
    wandb = wandb_settings(cfg)
    log_to_wandb(out, records, config=settings, init=wandb.init_kwargs())
    hint = sync_hint(out, wandb)
    if hint:
        console.print(hint, markup=False)
    return 0


def _evaluate_methods(cfg, family, tasks, agent: AgentSettings, console: Console):
    """Closed-loop episodes and prediction error of every checkpoint, with a line of progress per method."""
    from mbmeta.evaluation.episodes import evaluate_agent
    from mbmeta.evaluation.prediction import prediction_error, prediction_error_by_task, test_data
    from mbmeta.runs.training_data import agent_latent_range
    from mbmeta.training.checkpoint import load_module

    # every task needs one episode long enough for a K + H error segment (episodes can end early: juggler)
    data = test_data(family, tasks, seed=cfg.seed + 7919, min_length=agent.context_length + cfg.error_horizon)
    modules, records, curves, task_curves, plan_stats = {}, [], {}, {}, {}
    for i, ckpt in enumerate(cfg.ckpt):
        module = load_module(ckpt)
        label = cfg.labels[i] if cfg.labels else module.hparams.adaptation
        bounds = agent_latent_range(ckpt, module.dynamics, agent)
        modules[label] = (module, bounds)
        episodes = len(tasks) * cfg.episodes_per_task
        console.print(f"[bold]{label}[/bold] ({ckpt}): {episodes} episodes, {cfg.num_envs} at a time")
        start = time.perf_counter()
        evaluation = evaluate_agent(
            module,
            family,
            tasks,
            method=label,
            episodes_per_task=cfg.episodes_per_task,
            agent=agent,
            num_envs=cfg.num_envs,
            seed=cfg.seed,
            latent_range=bounds,
        )
        records += evaluation.records
        plan_stats[label] = evaluation.plan_stats
        mean = float(np.mean([r.episode_return for r in evaluation.records]))
        console.print(f"  done in {time.perf_counter() - start:.0f} s: mean return {mean:.1f}")
        segment = {"context_length": agent.context_length, "horizon": cfg.error_horizon, "seed": cfg.seed}
        try:
            curves[label] = prediction_error(module, data, **segment)
        except ValueError as err:  # episodes too short for K + H steps: report returns without the error curves
            console.print(f"[yellow]prediction error of {label!r} not measured: {err}[/yellow]")
        else:
            task_curves[label] = prediction_error_by_task(module, data, **segment)
    return modules, records, curves, task_curves, plan_stats


def _print_prediction_error(curves, task_curves, horizon: int, tasks: int, console: Console) -> None:
    console.print(f"prediction error on test-task data (MSE in its obs-std units) at h=1 / h={horizon}:")
    for label, curve in curves.items():
        median = np.median(np.stack(list(task_curves[label].values())), axis=0)  # non-empty: curve was measured
        mean_text, median_text = f"{curve[0]:.3g} / {curve[-1]:.3g}", f"{median[0]:.3g} / {median[-1]:.3g}"
        measured = f"{len(task_curves[label])}/{tasks} tasks"
        console.print(f"  {label:>10}: mean {mean_text}; median over tasks {median_text} ({measured})")


def _film(modules, family, tasks, agent: AgentSettings, out: Path, seed: int, console: Console) -> dict[str, str]:
    """One GIF per method and task, a line of progress each; returns file name -> caption (for W&B)."""
    from mbmeta.evaluation.reports import task_label
    from mbmeta.evaluation.video import record_video

    captions: dict[str, str] = {}
    total, done = len(modules) * len(tasks), 0
    for label, (module, bounds) in modules.items():
        for task_id, task in enumerate(tasks):
            done += 1
            start = time.perf_counter()
            path = out / f"video_{label}_task{task_id}.gif"
            path, episode_return = record_video(
                module, family, task, path, agent=agent, seed=seed, method=label, latent_range=bounds
            )
            text = f"{label}, task {task_id} ({task_label(task.as_dict())}): return {episode_return:.1f}"
            captions[path.name] = text
            console.print(f"video {done}/{total}: {path} ({text}; {time.perf_counter() - start:.0f} s)")
    return captions

"""CPU cost of an experiment's training runs and evaluations, from one loop iteration measured at tiny scale.

Composes the experiment's configs for one method exactly as ``mbmeta sweep`` does, then runs one iteration of the
real loop (:func:`mbmeta.runs.loop.run_training`) in this process with the same model, data and planner settings
but a tiny budget: ``initial_episodes`` and ``episodes_per_iteration`` equal to ``num_envs`` (so every planner call
plans for ``num_envs`` environments, as in the full run), episodes cut to ``--steps`` steps, and one epoch of
``--fit_batches`` batches. The CPU time of this process (``time.process_time``, one torch thread, so other processes
on the machine do not inflate it) is measured around the loop's fitting and its MPC collection:

- **fit**: CPU-seconds per gradient step (this includes Lightning's per-fit set-up and the validation of a tiny
  validation set, so it overestimates long fits slightly);
- **plan**: CPU-seconds per collection step of ``num_envs`` environments (adapt + plan + environment step; the
  planning calls counted by the agent).

and extrapolated to the full budget of the configs:

- training = iterations × epochs × ceil(samples_per_epoch / batch_size) gradient steps × fit, plus the validation
  pass of every epoch counted as val_samples / batch_size forward passes at a third of a gradient step each, plus
  iterations × ceil(episodes_per_iteration / num_envs) × episode length collection steps × plan (every episode at
  its full length: an upper bound where episodes end early, as CartPole's);
- evaluation (CaDM's protocol) = (1 + test conditions) × ceil(episodes / num_envs) × episode length steps × plan,
  for the final model, and for every kept checkpoint with ``curve_episodes`` scaled as episodes / num_envs
  environments per call (planning cost is linear in the environments planned for at these batch sizes).

    python benchmarks/iteration_cost.py experiments/cadm_pendulum --method context --steps 10
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")


def compose(experiment_dir: str, method: str) -> tuple[Any, Any]:
    """The experiment and the parsed ``mbmeta train`` config of ``method`` at training seed 0."""
    from mbmeta.commands.train import build_parser
    from mbmeta.runs.experiment import load_experiment

    experiment = load_experiment(experiment_dir)
    run = next(r for r in experiment.training_runs() if r.method == method)
    arguments = [a for c in run.configs for a in ("--config", str(experiment.root / c))]
    return experiment, build_parser().parse_args(arguments)


def measure_iteration(cfg: Any, *, steps: int, fit_batches: int) -> dict[str, float]:
    """Run one tiny iteration of the loop; CPU-seconds per gradient step and per collection step."""
    import mbmeta.runs.loop as loop_module
    from mbmeta.commands.agent_arguments import agent_settings
    from mbmeta.runs.settings import LoopSettings

    timers: dict[str, list[float]] = {"fit": [], "collect": []}

    def timed(name: str, function: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                timers[name].append(time.process_time() - start)

        return wrapper

    loop = dict(vars(cfg.loop))
    envs = loop["num_envs"]
    data = {**vars(cfg.data), "samples_per_epoch": fit_batches * cfg.data.batch_size}
    env_kwargs = {**cfg.env_kwargs, "max_episode_steps": steps}
    agents: list[Any] = []

    def make_agent(*args: Any, **kwargs: Any) -> Any:
        agents.append(real[2](*args, **kwargs))
        return agents[-1]

    real = loop_module.fit_model, loop_module.collect_episodes, loop_module.make_agent
    loop_module.fit_model = timed("fit", real[0])
    loop_module.collect_episodes = timed("collect", real[1])
    loop_module.make_agent = make_agent
    try:
        with tempfile.TemporaryDirectory() as run_dir:
            loop.update(
                run_dir=run_dir, iterations=1, initial_episodes=envs, episodes_per_iteration=envs,
                epochs_per_iteration=1, keep_checkpoints_every=0,
            )  # fmt: skip
            loop_module.run_training(
                LoopSettings(**loop), model=dict(vars(cfg.model)), data=data, agent=agent_settings(cfg),
                trainer={**cfg.trainer, "enable_progress_bar": False}, logger=False, log=lambda line: None,
                env_kwargs=env_kwargs,
            )  # fmt: skip
    finally:
        loop_module.fit_model, loop_module.collect_episodes, loop_module.make_agent = real
    (fit,) = timers["fit"]
    random, mpc = timers["collect"]
    calls = agents[0].plan_stats.calls  # collection steps (fewer than --steps where episodes end early)
    return {
        "fit_s_per_batch": fit / fit_batches,
        "plan_s_per_step": mpc / calls,
        "random_s_per_step": random / steps,
        "collection_steps": calls,
    }


def extrapolate(experiment: Any, cfg: Any, measured: dict[str, float]) -> dict[str, float]:
    """CPU-hours of one full training run, its final evaluation and its kept checkpoints' evaluations."""
    from mbmeta.envs import get_family

    family = get_family(cfg.loop.family)
    full_length = family.make_env().spec.max_episode_steps  # the protocol's episodes
    length = cfg.env_kwargs.get("max_episode_steps") or full_length  # the training episodes
    loop, data = cfg.loop, cfg.data
    batches = math.ceil(data.samples_per_epoch / data.batch_size)
    validation = data.val_samples / data.batch_size / 3  # forward passes, a third of a gradient step each
    fit = loop.iterations * loop.epochs_per_iteration * (batches + validation) * measured["fit_s_per_batch"]
    calls = loop.iterations * math.ceil(loop.episodes_per_iteration / loop.num_envs) * length
    collect = calls * measured["plan_s_per_step"] + loop.initial_episodes * length * measured["random_s_per_step"]
    settings = experiment.evaluation
    conditions = 1 + len(family.conditions)
    per_env_step = measured["plan_s_per_step"] / loop.num_envs

    def protocol(episodes: int) -> float:
        envs = min(episodes, settings.num_envs)  # environments planned for per call
        return conditions * math.ceil(episodes / envs) * full_length * envs * per_env_step

    episodes = settings.protocol_episodes or family.protocol_episodes
    kept = loop.iterations // loop.keep_checkpoints_every if loop.keep_checkpoints_every else 0
    curve = kept * protocol(settings.curve_episodes or episodes) if settings.every_kept_checkpoint else 0.0
    return {
        "episode_length": length,
        "fit_h": fit / 3600,
        "collect_h": collect / 3600,
        "train_h": (fit + collect) / 3600,
        "evaluate_h": protocol(episodes) / 3600,
        "curve_h": curve / 3600,
        "run_h": (fit + collect + protocol(episodes) + curve) / 3600,
    }


def main(argv: list[str] | None = None) -> int:
    """Measure one tiny iteration per method and print the extrapolated CPU-hours (JSON with --out)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("experiment", help="experiment directory (experiment.yaml)")
    parser.add_argument("--method", nargs="+", default=None, help="methods that train (default: all)")
    parser.add_argument("--steps", type=int, default=20, help="collection steps measured (episode length here)")
    parser.add_argument("--fit_batches", type=int, default=20, help="gradient steps measured")
    parser.add_argument("--out", default=None, help="write the measurements and the extrapolation to this JSON")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from mbmeta.runs.experiment import load_experiment

    experiment = load_experiment(args.experiment)
    methods = args.method or [m.name for m in experiment.methods.values() if m.trains]
    report = {"experiment": experiment.name, "steps": args.steps, "fit_batches": args.fit_batches, "methods": {}}
    for method in methods:
        experiment, cfg = compose(args.experiment, method)
        measured = measure_iteration(cfg, steps=args.steps, fit_batches=args.fit_batches)
        full = extrapolate(experiment, cfg, measured)
        report["methods"][method] = {**measured, **full}
        print(
            f"{experiment.name} {method}: {measured['fit_s_per_batch']:.3g} CPU-s per gradient step, "
            f"{measured['plan_s_per_step']:.3g} CPU-s per collection step of {cfg.loop.num_envs} environments -> "
            f"training {full['train_h']:.1f} h (fit {full['fit_h']:.1f}, collect {full['collect_h']:.1f}), final "
            f"evaluation {full['evaluate_h']:.1f} h, curve {full['curve_h']:.1f} h: {full['run_h']:.1f} CPU-h per run",
            flush=True,
        )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``mbmeta sweep``: train and evaluate an experiment's methods × seeds, and merge the results into one table.

    mbmeta sweep experiments/pendulum                         # everything, one job per core, resumable
    mbmeta sweep experiments/pendulum --methods none context --seeds 0 1 --jobs 2
    mbmeta sweep experiments/pendulum --merge-only            # rebuild results/table.md (and curve.md) from disk
    mbmeta sweep experiments/pendulum --evaluate-only         # evaluate what exists (e.g. kept checkpoints of a
                                                              # run stopped early), train nothing, then merge
    mbmeta sweep experiments/pendulum --print-commands        # one shell command per run (SLURM job arrays, ...)
    mbmeta sweep experiments/pendulum --wandb-sweep           # a W&B sweep YAML (wandb sweep / wandb agent)

The experiment directory's ``experiment.yaml`` declares the design (see :mod:`mbmeta.runs.experiment`); runs go to
``runs/<method>-seed<s>/``, evaluations to ``results/<method>-seed<s>/eval<e>/``, the merged table to
``results/table.md`` and ``results/summary.json``. Running the same command again continues where it stopped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from mbmeta.commands import one_line_errors
from mbmeta.runs.experiment import Experiment, ExperimentError, load_experiment


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``mbmeta sweep``."""
    from mbmeta.commands.parsing import ShortArgumentParser  # short parse errors

    parser = ShortArgumentParser(
        prog="mbmeta sweep",
        description="Train and evaluate the methods × seeds an experiment directory declares (experiment.yaml), "
        "several runs side by side, resumably; then write one merged table with mean, standard error and 95 % "
        "interval per method and test condition, and paired differences between methods.",
    )
    parser.add_argument("experiment", help="experiment directory (holding experiment.yaml)")
    parser.add_argument("--methods", nargs="+", default=None, help="only these methods (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="only these training seeds (default: all)")
    parser.add_argument("--run", default=None, help="only this training run and its evaluations, e.g. context-seed3")
    parser.add_argument("--jobs", type=int, default=None, help="runs side by side (default: the number of cores)")
    parser.add_argument(
        "--replace",
        action="store_true",
        help="move results made from another checkpoint or with other settings to results/replaced/ and redo them",
    )
    actions = parser.add_mutually_exclusive_group()
    actions.add_argument("--merge-only", action="store_true", help="only rebuild the table from results on disk")
    actions.add_argument(
        "--evaluate-only",
        action="store_true",
        help="train nothing: evaluate the final models of finished runs and the kept checkpoints of every run "
        "started with the current configs (finished, stopped or still training), then merge",
    )
    actions.add_argument(
        "--print-commands", action="store_true", help="print one self-contained shell command per training run"
    )
    actions.add_argument(
        "--wandb-sweep", action="store_true", help="print a W&B sweep config (YAML) with one grid point per run"
    )
    actions.add_argument("--dry-run", action="store_true", help="print the mbmeta commands a sweep would run")
    actions.add_argument(
        "--status",
        action="store_true",
        help=(
            "print where each run stands (training iterations, evaluations done, what is running now) and an estimate "
            "of the time left; writes nothing"
        ),
    )
    return parser


def check_train_configs(experiment: Experiment, runs: list) -> None:
    """Parse every training run's composed configs with ``mbmeta train``'s parser before anything starts.

    Raises:
        ExperimentError: a config that does not parse, trains another family than the experiment declares, keeps
            no checkpoint where every kept checkpoint is to be evaluated, or a protocol the family does not have.
    """
    from jsonargparse import ArgumentError

    from mbmeta.commands.train import build_parser as train_parser

    parser = train_parser()
    parser.exit_on_error = False
    for run in runs:
        arguments = [a for c in run.configs for a in ("--config", str(experiment.root / c))]
        try:
            cfg = parser.parse_args(arguments)
        except (ArgumentError, ValueError, TypeError) as err:
            message = " ".join(str(err).split())
            raise ExperimentError(f"{experiment.root}: run {run.name}: its configs do not parse: {message}") from err
        if cfg.loop.family != experiment.family:
            raise ExperimentError(
                f"{experiment.root}: run {run.name}: its configs train loop.family {cfg.loop.family!r}, "
                f"but experiment.yaml declares family {experiment.family!r}"
            )
        if experiment.evaluation.every_kept_checkpoint and cfg.loop.keep_checkpoints_every < 1:
            raise ExperimentError(
                f"{experiment.root}: run {run.name}: evaluate.every_kept_checkpoint is true but its configs keep no "
                "checkpoint (set loop.keep_checkpoints_every >= 1)"
            )
    if experiment.evaluation.protocol == "cadm":
        from mbmeta.envs import get_family
        from mbmeta.evaluation.protocol import protocol_conditions

        try:
            protocol_conditions(get_family(experiment.family))
        except ValueError as err:
            raise ExperimentError(f"{experiment.root}: evaluate.protocol cadm: {err}") from err


def check_policies(experiment: Experiment) -> None:
    """Refuse a ``scripted`` reference-policy method on a family without a scripted controller, before anything starts.

    Raises:
        ExperimentError: names the method and the family.
    """
    scripted = [m.name for m in experiment.methods.values() if m.policy == "scripted"]
    if not scripted:
        return
    from mbmeta.control.factory import require_controller
    from mbmeta.envs import get_family

    try:
        require_controller(get_family(experiment.family), f"methods.{scripted[0]}.policy")
    except ValueError as err:
        raise ExperimentError(f"{experiment.root}: {err}") from err


@one_line_errors("sweep")
def run(argv: list[str]) -> int:
    """Parse ``argv`` and sweep (or merge, or print); returns the exit code."""
    from mbmeta.runs.curve import merge_curve_and_write
    from mbmeta.runs.merge import merge_and_write
    from mbmeta.runs.sweep import (
        Sweep,
        SweepError,
        default_parallel_jobs,
        evaluate_arguments,
        job_commands,
        log_to_wandb_agent,
        plan_jobs,
        train_arguments,
        wandb_sweep_config,
    )

    args = build_parser().parse_args(argv)
    if args.jobs is not None and args.jobs < 1:
        return _error(f"--jobs must be >= 1, got {args.jobs}")
    if args.evaluate_only and args.replace:
        return _error("--replace moves runs aside to train them again; it does not go with --evaluate-only")
    try:
        experiment = load_experiment(args.experiment)
        if args.merge_only:
            summary = merge_and_write(experiment)
            merge_curve_and_write(experiment)
            _print_headline(experiment, summary)
            return 0
        jobs = plan_jobs(experiment, args.methods, args.seeds, args.run)
        directory = str(Path(args.experiment))
        if args.print_commands:
            print("\n".join(job_commands(directory, jobs)))
            return 0
        if args.wandb_sweep:
            print(yaml.safe_dump(wandb_sweep_config(experiment, directory, jobs), sort_keys=False), end="")
            return 0
        if args.status:
            from mbmeta.runs.status import experiment_status, status_table

            print(status_table(experiment, experiment_status(experiment, jobs)))
            return 0
        if args.dry_run:
            for job in jobs:
                print(f"# {job.name} (in {experiment.root})")
                if job.training is not None:
                    print("mbmeta " + " ".join(train_arguments(job.training)))
                for evaluation in job.evaluations:
                    print("mbmeta " + " ".join(evaluate_arguments(experiment, evaluation)))
                if experiment.evaluation.every_kept_checkpoint and job.training is not None:
                    print("# then one mbmeta evaluate per checkpoint the run keeps (loop.keep_checkpoints_every)")
            return 0
        check_train_configs(experiment, [job.training for job in jobs if job.training is not None])
        check_policies(experiment)
        parallel = args.jobs or default_parallel_jobs()
        sweep = Sweep(experiment, jobs, parallel=parallel, replace=args.replace, train=not args.evaluate_only)
        sweep.check()  # before saying anything: results it would overwrite stop it here
        what = "evaluating the models of" if args.evaluate_only else "sweep"
        policies = sum(job.training is None for job in jobs)
        counts = f"{len(jobs) - policies} training run(s)" + (f", {policies} policy job(s)" if policies else "")
        print(f"{what} {experiment.root}: {counts}, {sweep.parallel} at a time", flush=True)
        _warn_of_other_releases(experiment)
        outcomes = sweep.run()
        summary = merge_and_write(experiment)
        merge_curve_and_write(experiment)
        log_to_wandb_agent(summary, jobs)
    except (ExperimentError, SweepError, ValueError) as err:
        return _error(str(err))
    # with --evaluate-only, evaluations of unfinished trainings are expected not to run
    failed = [o for o in outcomes if o.status == "failed" or (o.status == "not run" and not args.evaluate_only)]
    _print_headline(experiment, summary)
    if failed:
        print(f"mbmeta sweep: {len(failed)} step(s) failed or not run: {', '.join(o.step for o in failed)}")
        return 1
    return 0


def _warn_of_other_releases(experiment: Experiment) -> None:
    """Say so when the experiment's done evaluations ran under other releases than the installed ones."""
    from mbmeta.provenance import software_versions
    from mbmeta.runs.merge import evaluation_releases
    from mbmeta.runs.software import release_warnings

    # only the recorded versions of the done evaluations: the merge (statistics, tables) comes after the sweep
    for line in release_warnings({"evaluations": evaluation_releases(experiment)}, software_versions()):
        print(f"warning: {line}", flush=True)


def _print_headline(experiment: Experiment, summary: dict) -> None:
    """Print the overall table of the headline metric and the run counts."""
    from mbmeta.runs.merge import headline_table

    print(headline_table(experiment, summary), flush=True)


def _error(message: str) -> int:
    print(f"mbmeta sweep: error: {message}", file=sys.stderr, flush=True)
    return 1

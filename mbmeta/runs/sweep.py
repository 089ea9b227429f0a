"""The experiment runner: train and evaluate methods × seeds of an :class:`~mbmeta.runs.experiment.Experiment`.

Each training run is one ``mbmeta train`` subprocess, followed by one ``mbmeta evaluate`` subprocess per method
that uses its model and evaluation seed (with ``evaluate.protocol: cadm``, ``mbmeta evaluate --protocol cadm``), then,
with ``evaluate.every_kept_checkpoint``, one per checkpoint the run kept (the learning curve); that chain is a
:class:`Job` (a reference policy's job trains nothing: one ``mbmeta evaluate --policy`` per evaluation seed at one
policy seed), and up to ``parallel`` jobs run side by side (one per core, each with one torch thread). Every
subprocess runs in the experiment directory, so the paths in its files are relative and the directory can be moved
or committed; its output goes to a log file beside its outputs.

Resuming: a ``sweep.json`` stamp beside every run and evaluation records the command's fingerprint, its status and
(once done) the checkpoint's SHA-256. Running the same sweep again skips trainings and evaluations whose stamp says
done for the same settings and checkpoint, continues unfinished trainings (``mbmeta train`` resumes by itself) and
redoes failed or interrupted steps. Results that exist but were made from another checkpoint or other settings
(e.g. outputs migrated from an earlier layout) are never overwritten: the sweep stops before starting anything
unless ``replace`` is set, which moves them to ``results/replaced/``.

Scale-out: :func:`job_commands` gives one self-contained shell command per training run (``mbmeta sweep DIR --run
NAME --jobs 1``) for a SLURM job array or any other scheduler, and :func:`wandb_sweep_config` a W&B sweep whose
agents run the same commands on many machines.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mbmeta.data.atomic import atomic_write
from mbmeta.runs.durations import precise_duration
from mbmeta.runs.experiment import RESULTS_DIR, RUNS_DIR, CurveEvaluation, EvaluationRun, Experiment, TrainingRun
from mbmeta.runs.run_dir import (
    CHECKPOINT_FILE,
    LOCK_FILE,
    STATE_FILE,
    KeptCheckpoint,
    LoopState,
    RunInUseError,
    RunLock,
    file_sha256,
)

STAMP_FILE = "sweep.json"
TRAIN_LOG = "train.log"
EVALUATE_LOG = "evaluate.log"
REPLACED_DIR = "replaced"
# Environment variables a W&B sweep agent sets for its program; the children log their own W&B runs, so they must
# not inherit the agent's run id (every child would write into the one sweep run).
WANDB_AGENT_VARIABLES = ("WANDB_RUN_ID", "WANDB_SWEEP_ID", "WANDB_SWEEP_PARAM_PATH")


class SweepError(ValueError):
    """A sweep that cannot start: a selection naming nothing declared, or results it would overwrite."""


@dataclass(frozen=True)
class Job:
    """One training run and the evaluations of its model (in order); the unit that runs on one core.

    A reference policy's job has no training run (None): only its evaluations at one policy seed.
    """

    training: TrainingRun | None
    evaluations: tuple[EvaluationRun, ...]

    @property
    def name(self) -> str:
        """The training run's name, ``<method>-seed<s>`` (``mbmeta sweep --run`` takes it); a policy's likewise."""
        return self.evaluations[0].job_name


@dataclass(frozen=True)
class Outcome:
    """What happened to one step of a sweep.

    Attributes:
        step: ``train <run>``, ``evaluate <method>-seed<s>/eval<e>`` or
            ``evaluate <method>-seed<s>/curve/iteration_NNN/eval<e>``.
        status: ``done`` (ran and succeeded), ``skipped`` (already done), ``failed`` or ``not run`` (its training
            failed or has not finished, or another sweep is running it).
        seconds: wall time of the subprocess (0 when it did not run).
        log: the log file, relative to the experiment directory.
    """

    step: str
    status: str
    seconds: float = 0.0
    log: str = ""


def plan_jobs(
    experiment: Experiment,
    methods: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    run: str | None = None,
) -> list[Job]:
    """The jobs of a sweep, optionally restricted to some methods, training seeds or one training run.

    A method that evaluates another's models (``model_of``) brings that training run into its job; the job then
    evaluates only the selected methods.

    Raises:
        SweepError: a method, seed or run that the experiment does not declare.
    """
    for name in methods or ():
        if name not in experiment.methods:
            raise SweepError(f"{experiment.name}: unknown method {name!r} (declared: {', '.join(experiment.methods)})")
    evaluations = [
        e
        for e in experiment.evaluation_runs()
        if (methods is None or e.method in methods) and (seeds is None or e.seed in seeds)
    ]
    if run is not None:
        names = list(dict.fromkeys(e.job_name for e in experiment.evaluation_runs()))
        if run not in names:
            raise SweepError(f"{experiment.name}: unknown run {run!r} (runs: {', '.join(names)})")
        evaluations = [e for e in evaluations if e.job_name == run]
    if not evaluations:
        raise SweepError(f"{experiment.name}: the selection (methods {methods}, seeds {seeds}) declares no run")
    grouped: dict[str, list[EvaluationRun]] = {}
    for evaluation in evaluations:
        grouped.setdefault(evaluation.job_name, []).append(evaluation)
    return [Job(evals[0].training, tuple(evals)) for evals in grouped.values()]


# ----- commands --------------------------------------------------------------------------------------------------


def train_arguments(run: TrainingRun) -> list[str]:
    """The ``mbmeta train`` arguments of a training run (paths relative to the experiment directory)."""
    arguments = ["train"]
    for config in run.configs:
        arguments += ["--config", config]
    return [*arguments, "--loop.seed", str(run.seed), "--loop.run_dir", run.run_dir]


def evaluation_settings(experiment: Experiment, evaluation: EvaluationRun) -> dict[str, Any]:
    """Everything an evaluation's numbers depend on besides the checkpoint (compared before reusing results).

    A reference policy's: the policy, its seed and the tasks, episodes and environments (no agent, no error horizon).
    """
    settings = experiment.evaluation
    tasks = {
        "split": settings.split,
        "tasks": settings.tasks,
        **({"task_design": settings.task_design} if settings.tasks is not None else {}),
        "episodes_per_task": settings.episodes_per_task,
        "num_envs": settings.num_envs,
        "seed": evaluation.eval_seed,
    }
    if evaluation.policy is not None:  # the experiment refuses a policy method under a protocol
        return {"method": evaluation.method, "policy": evaluation.policy, "policy_seed": evaluation.seed, **tasks}
    if settings.protocol is not None:
        estimator = experiment.methods[evaluation.method].protocol_estimator
        return {
            "method": evaluation.method,
            "protocol": settings.protocol,
            "protocol_episodes": settings.protocol_episodes,
            **({"protocol_estimator": estimator} if estimator is not None else {}),  # absent: as before the option
            "num_envs": settings.num_envs,
            "seed": evaluation.eval_seed,
            "agent": experiment.evaluation_agent(evaluation.method),
        }
    return {
        "method": evaluation.method,
        **tasks,
        "error_horizon": settings.error_horizon,
        "agent": experiment.evaluation_agent(evaluation.method),
    }


def curve_settings(experiment: Experiment, curve: CurveEvaluation) -> dict[str, Any]:
    """The settings of a kept checkpoint's evaluation: the final one's, with ``curve_episodes`` where it is set."""
    settings = {**evaluation_settings(experiment, curve.evaluation), "iteration": curve.kept.iteration}
    episodes = experiment.evaluation.curve_episodes
    if episodes is not None:
        settings["protocol_episodes" if experiment.evaluation.protocol else "episodes_per_task"] = episodes
    return settings


def evaluates_final_model(experiment: Experiment, curve: CurveEvaluation, final_sha: str | None) -> bool:
    """Whether a kept checkpoint's evaluation is the final evaluation's, which the sweep then copies.

    The same model (``final_sha``: the final checkpoint's SHA-256) and the same settings but the iteration.
    """
    if final_sha is None or curve.kept.sha256 != final_sha:
        return False
    settings = {k: v for k, v in curve_settings(experiment, curve).items() if k != "iteration"}
    return settings == evaluation_settings(experiment, curve.evaluation)


def evaluate_arguments(experiment: Experiment, evaluation: EvaluationRun) -> list[str]:
    """The ``mbmeta evaluate`` arguments of an evaluation (paths relative to the experiment directory)."""
    settings = evaluation_settings(experiment, evaluation)
    return _evaluate_arguments(experiment, settings, evaluation_checkpoint(evaluation), evaluation.out_dir)


def evaluation_checkpoint(evaluation: EvaluationRun) -> str | None:
    """The checkpoint an evaluation evaluates (relative to the experiment directory); None for a reference policy."""
    return None if evaluation.training is None else f"{evaluation.training.run_dir}/{CHECKPOINT_FILE}"


def curve_arguments(experiment: Experiment, curve: CurveEvaluation) -> list[str]:
    """The ``mbmeta evaluate`` arguments of a kept checkpoint's evaluation."""
    return _evaluate_arguments(experiment, curve_settings(experiment, curve), curve.checkpoint, curve.out_dir)


def _evaluate_arguments(experiment: Experiment, s: dict[str, Any], checkpoint: str | None, out_dir: str) -> list[str]:
    if checkpoint is None:  # a reference policy: on the experiment's family, without a model's options
        arguments = ["evaluate", "--policy", s["policy"], "--family", experiment.family]
        arguments += ["--policy_seed", str(s["policy_seed"]), "--labels", s["method"]]
    else:
        arguments = ["evaluate", "--ckpt", checkpoint, "--labels", s["method"]]
    if "protocol" in s:
        arguments[1:1] = ["--protocol", s["protocol"]]
        if s["protocol_episodes"] is not None:
            arguments += ["--protocol_episodes", str(s["protocol_episodes"])]
        if "protocol_estimator" in s:
            arguments += ["--protocol_estimator", s["protocol_estimator"]]
        arguments += ["--num_envs", str(s["num_envs"]), "--seed", str(s["seed"])]
    else:
        arguments += ["--split", s["split"], "--episodes_per_task", str(s["episodes_per_task"])]
        arguments += ["--num_envs", str(s["num_envs"]), "--seed", str(s["seed"])]
        if "error_horizon" in s:
            arguments += ["--error_horizon", str(s["error_horizon"])]
            arguments += ["--video_tasks", str(experiment.evaluation.video_tasks)]
        if s["tasks"] is not None:
            arguments += ["--tasks", str(s["tasks"]), "--task_design", s["task_design"]]
    for key, value in s.get("agent", {}).items():
        arguments += [f"--agent.{key}", value if isinstance(value, str) else json.dumps(value)]
    return [*arguments, "--out", out_dir]


def train_fingerprint(experiment: Experiment, run: TrainingRun) -> str:
    """SHA-256 of a training run's arguments and the contents of its config files: a changed config shows."""
    contents = {config: (experiment.root / config).read_text() for config in run.configs}
    payload = json.dumps({"arguments": train_arguments(run), "configs": contents}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


# ----- stamps: what was run, with which settings, and how it ended -------------------------------------------------


def read_stamp(directory: Path) -> dict[str, Any] | None:
    """The ``sweep.json`` of a run or evaluation directory, or None.

    Raises:
        ValueError: the file exists but is not a JSON object (names it).
    """
    path = directory / STAMP_FILE
    if not path.is_file():
        return None
    try:
        stamp = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"sweep stamp {path} is corrupt ({err}); delete it to redo that step") from err
    if not isinstance(stamp, dict):
        raise ValueError(f"sweep stamp {path} is corrupt: expected a JSON object")
    return stamp


def write_stamp(directory: Path, stamp: dict[str, Any]) -> None:
    """Write a ``sweep.json`` atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write(directory / STAMP_FILE, lambda f: f.write(json.dumps(stamp, indent=2).encode()))


def finished_checkpoint(experiment: Experiment, run: TrainingRun) -> str | None:
    """The SHA-256 of a training run's final checkpoint if the run is done with its current settings, else None."""
    directory = experiment.root / run.run_dir
    stamp = read_stamp(directory)
    checkpoint = directory / CHECKPOINT_FILE
    if stamp is None or stamp.get("status") != "done" or not checkpoint.is_file():
        return None
    if stamp.get("fingerprint") != train_fingerprint(experiment, run):
        return None
    sha = file_sha256(checkpoint)
    return sha if stamp.get("checkpoint_sha256") == sha else None


def started_with_current_configs(experiment: Experiment, run: TrainingRun) -> bool:
    """Whether the sweep started the training run with its current configs (its stamp's fingerprint matches)."""
    stamp = read_stamp(experiment.root / run.run_dir)
    return stamp is not None and stamp.get("fingerprint") == train_fingerprint(experiment, run)


def training_is_stale(experiment: Experiment, run: TrainingRun) -> bool:
    """Whether the run directory holds a run the sweep started with other configs (``mbmeta train`` would refuse it).

    A directory without a stamp is left to ``mbmeta train``, which resumes it if its settings are the same.
    """
    directory = experiment.root / run.run_dir
    stamp = read_stamp(directory)
    started = (directory / STATE_FILE).is_file() or (directory / CHECKPOINT_FILE).is_file()
    return started and stamp is not None and stamp.get("fingerprint") != train_fingerprint(experiment, run)


def evaluation_state(experiment: Experiment, evaluation: EvaluationRun, checkpoint_sha: str | None) -> str:
    """``done`` (results of this checkpoint and settings exist), ``todo``, or ``stale`` (other results are there).

    Results without a stamp, or stamped for another checkpoint or other settings, are ``stale``; a stamp that says
    running or failed marks this runner's own unfinished output, which is redone (``todo``).
    """
    settings = evaluation_settings(experiment, evaluation)
    policy = evaluation.policy is not None
    return output_state(experiment, evaluation.out_dir, settings, checkpoint_sha, without_checkpoint=policy)


def curve_state(experiment: Experiment, curve: CurveEvaluation) -> str:
    """:func:`evaluation_state` of a kept checkpoint's evaluation (against the SHA-256 ``state.json`` records)."""
    return output_state(experiment, curve.out_dir, curve_settings(experiment, curve), curve.kept.sha256)


def output_state(
    experiment: Experiment,
    out_dir: str,
    settings: dict[str, Any],
    checkpoint_sha: str | None,
    *,
    without_checkpoint: bool = False,
) -> str:
    """``done``, ``todo`` or ``stale`` for the evaluation output in ``out_dir`` (see :func:`evaluation_state`).

    ``without_checkpoint``: a reference policy's evaluation, which the settings alone identify (``checkpoint_sha``
    None); otherwise a None ``checkpoint_sha`` (no finished training) is never done.
    """
    directory = experiment.root / out_dir
    stamp = read_stamp(directory)
    has_results = (directory / experiment.evaluation.results_file).is_file()
    if stamp is None:
        return "stale" if has_results else "todo"
    if stamp.get("status") != "done":
        return "todo"
    same = stamp.get("settings") == settings
    source = without_checkpoint or checkpoint_sha is not None
    if same and has_results and source and stamp.get("checkpoint_sha256") == checkpoint_sha:
        return "done"
    return "stale"


def kept_checkpoints(experiment: Experiment, run: TrainingRun) -> tuple[KeptCheckpoint, ...]:
    """The checkpoints a training run kept, as its ``state.json`` records them (none before it starts).

    Raises:
        ValueError: the state file is corrupt (names it).
    """
    path = experiment.root / run.run_dir / STATE_FILE
    return LoopState.load(path).kept if path.is_file() else ()


def curve_evaluations(experiment: Experiment, job: Job) -> list[CurveEvaluation]:
    """The kept-checkpoint evaluations of a job, from its run's ``state.json``.

    Empty unless ``every_kept_checkpoint``, and for a reference policy's job (it keeps no checkpoint).
    """
    if not experiment.evaluation.every_kept_checkpoint or job.training is None:
        return []
    kept = kept_checkpoints(experiment, job.training)
    return [c for evaluation in job.evaluations for c in experiment.curve_evaluations(evaluation, kept)]


def evaluation_lock_dir(evaluation: EvaluationRun) -> str:
    """Where the lock of an evaluation's output lives, relative to the experiment directory.

    Its training run's directory; for a reference policy (no run directory) ``results/<method>-seed<s>/``, beside
    its evaluations.
    """
    training = evaluation.training
    return f"{RESULTS_DIR}/{evaluation.job_name}" if training is None else training.run_dir


def evaluation_lock_name(out_dir: str) -> str:
    """The lock file's name for the evaluation output ``out_dir`` (one lock per output)."""
    return f".evaluate-{out_dir.replace('/', '_')}.lock"


def training_lock(run_dir: Path) -> RunLock:
    """The lock a sweep holds while it trains ``run_dir``: ``.train-<run>.lock`` beside the run directory.

    Beside it rather than in it, so that moving a replaced run aside does not move the lock with it; held from
    before the ``mbmeta train`` subprocess starts until it ends, which also covers the seconds before that process
    takes the run's own lock.
    """
    return RunLock(run_dir.parent, f".train-{run_dir.name}.lock")


# ----- running -----------------------------------------------------------------------------------------------------


def child_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of the sweep's subprocesses: one thread each, the runner's own mbmeta, no W&B agent ids.

    The package directory of the running mbmeta goes first on ``PYTHONPATH`` so that ``python -m mbmeta`` in the
    experiment directory imports the same code as the runner.
    """
    env = dict(os.environ if base is None else base)
    env.update(MBMETA_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.setdefault("WANDB_MODE", "offline")
    env.setdefault("MUJOCO_GL", "egl")
    for name in WANDB_AGENT_VARIABLES:
        env.pop(name, None)
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    return env


def default_parallel_jobs() -> int:
    """The cores this process may use (one job per core)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class Sweep:
    """Runs the jobs of an experiment, at most ``parallel`` at a time.

    Args:
        experiment: the experiment.
        jobs: what to run (:func:`plan_jobs`).
        parallel: jobs side by side.
        replace: move results made from another checkpoint or with other settings to ``results/replaced/`` and
            redo them (without it, :meth:`check` refuses to start).
        log: where progress lines go (None: standard output, flushed line by line).
        command: the program prefix of the subprocesses (default: this Python's ``-m mbmeta``).
        train: train (or resume) each run first; False evaluates only what exists: the final models of finished
            runs, and the kept checkpoints of every run started with the current configs, finished or not (e.g. a
            run stopped when its time ran out, or one still training in another process).
    """

    def __init__(
        self,
        experiment: Experiment,
        jobs: Sequence[Job],
        *,
        parallel: int = 1,
        replace: bool = False,
        log: Callable[[str], None] | None = None,
        command: Sequence[str] | None = None,
        train: bool = True,
    ) -> None:
        self.experiment = experiment
        self.jobs = list(jobs)
        self.parallel = max(1, parallel)
        self.replace = replace
        self.train = train
        # Flushed: a sweep's output usually goes to a log file (`nohup ... >> sweep.log`), where print would hold its
        # progress lines in a buffer for hours.
        self.log = log if log is not None else functools.partial(print, flush=True)
        self.command = list(command) if command is not None else [sys.executable, "-m", "mbmeta"]
        self.env = child_environment()
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def stale_results(self) -> list[str]:
        """Run and evaluation directories this sweep would have to replace (relative paths)."""
        stale = []
        for job in self.jobs:
            if job.training is not None and training_is_stale(self.experiment, job.training):
                stale.append(job.training.run_dir)
            sha = None if job.training is None else finished_checkpoint(self.experiment, job.training)
            for evaluation in job.evaluations:
                if evaluation_state(self.experiment, evaluation, sha) == "stale":
                    stale.append(evaluation.out_dir)
            for curve in curve_evaluations(self.experiment, job):
                if curve_state(self.experiment, curve) == "stale":
                    stale.append(curve.out_dir)
        return stale

    def check(self) -> None:
        """Refuse to start when results would be overwritten and ``replace`` is off.

        Raises:
            SweepError: names the first such directory and how many there are.
        """
        stale = self.stale_results()
        if stale and not self.replace:
            raise SweepError(
                f"{self.experiment.root / stale[0]} (and {len(stale) - 1} more) hold runs or results not made from "
                "the current configs, checkpoint and settings (e.g. migrated outputs); `--merge-only` tables what is "
                f"there, `--replace` moves them to {RUNS_DIR}/{REPLACED_DIR}/ or {RESULTS_DIR}/{REPLACED_DIR}/ and "
                "runs again"
            )

    def run(self) -> list[Outcome]:
        """Run every job (after :meth:`check`); returns the outcome of every step, in job order."""
        self.check()
        outcomes: list[list[Outcome]] = [[] for _ in self.jobs]
        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            futures = [pool.submit(self._run_job, job, outcomes[i]) for i, job in enumerate(self.jobs)]
            try:
                for future in futures:
                    future.result()
            except BaseException:
                self._stop.set()  # no new subprocess starts; the running ones got the same Ctrl-C
                raise
        return [outcome for job_outcomes in outcomes for outcome in job_outcomes]

    def _say(self, line: str) -> None:
        with self._lock:
            self.log(f"[{time.strftime('%H:%M:%S')}] {line}")

    def _run_job(self, job: Job, outcomes: list[Outcome]) -> None:
        if job.training is None:
            self._run_policy_job(job, outcomes)
            return
        if self.train:
            sha, outcome = self._train(job.training)
            outcomes.append(outcome)
        else:
            sha = finished_checkpoint(self.experiment, job.training)
        for evaluation in job.evaluations:
            if self._stop.is_set():
                return
            step = f"evaluate {_step_name(evaluation.out_dir)}"
            if sha is None:
                outcomes.append(Outcome(step, "not run"))
                continue
            outcomes.append(self._evaluate(evaluation, sha, step))
        if not started_with_current_configs(self.experiment, job.training):
            return  # no kept checkpoint of these configs (a failed training still has its kept ones evaluated)
        for curve in curve_evaluations(self.experiment, job):
            if self._stop.is_set():
                return
            outcomes.append(self._evaluate_kept(curve))

    def _run_policy_job(self, job: Job, outcomes: list[Outcome]) -> None:
        """A reference policy's evaluations (no training, no checkpoint), also with ``train=False``."""
        for evaluation in job.evaluations:
            if self._stop.is_set():
                return
            outcomes.append(self._evaluate(evaluation, None, f"evaluate {_step_name(evaluation.out_dir)}"))

    def _train(self, run: TrainingRun) -> tuple[str | None, Outcome]:
        """Train (or resume) ``run`` unless it is done or another sweep or ``mbmeta train`` is running it.

        A busy run is left to whoever runs it (``not run``): its evaluations wait for a later sweep, and the other
        process's stamp and files are not touched.
        """
        step = f"train {run.name}"
        directory = self.experiment.root / run.run_dir
        log = f"{run.run_dir}/{TRAIN_LOG}"
        sha = finished_checkpoint(self.experiment, run)
        if sha is not None:
            self._say(f"skip   {step} (done)")
            return sha, Outcome(step, "skipped", log=log)
        directory.parent.mkdir(parents=True, exist_ok=True)
        try:
            with training_lock(directory):
                if RunLock.in_use(directory, LOCK_FILE):  # an `mbmeta train` started outside any sweep
                    return None, self._busy(step, log)
                return self._train_locked(run, step, directory, log)
        except RunInUseError:
            return None, self._busy(step, log)

    def _busy(self, step: str, log: str) -> Outcome:
        self._say(f"busy   {step} (another sweep or mbmeta train is running it)")
        return Outcome(step, "not run", log=log)

    def _train_locked(self, run: TrainingRun, step: str, directory: Path, log: str) -> tuple[str | None, Outcome]:
        sha = finished_checkpoint(self.experiment, run)  # another sweep may have finished it since
        if sha is not None:
            self._say(f"skip   {step} (done)")
            return sha, Outcome(step, "skipped", log=log)
        if training_is_stale(self.experiment, run):  # only reached with replace=True (check() refused otherwise)
            self._move_aside(directory)
        fingerprint = train_fingerprint(self.experiment, run)
        stamp = {"step": step, "arguments": train_arguments(run), "fingerprint": fingerprint}
        returncode, seconds = self._subprocess(step, train_arguments(run), directory, TRAIN_LOG, stamp)
        checkpoint = directory / CHECKPOINT_FILE
        if returncode == 0 and checkpoint.is_file():
            sha = file_sha256(checkpoint)
            write_stamp(directory, {**stamp, "status": "done", "seconds": seconds, "checkpoint_sha256": sha})
            self._say(f"done   {step} ({precise_duration(seconds)})")
            return sha, Outcome(step, "done", seconds, log)
        write_stamp(directory, {**stamp, "status": "failed", "returncode": returncode, "seconds": seconds})
        self._say(f"FAILED {step} (exit {returncode}; log {self.experiment.root / log})")
        return None, Outcome(step, "failed", seconds, log)

    def _evaluate(self, evaluation: EvaluationRun, checkpoint_sha: str | None, step: str) -> Outcome:
        """Evaluate a final model (``checkpoint_sha`` its SHA-256), or a reference policy (None)."""
        stamp = {
            "step": step,
            "arguments": evaluate_arguments(self.experiment, evaluation),
            "settings": evaluation_settings(self.experiment, evaluation),
            "checkpoint": evaluation_checkpoint(evaluation),
            "checkpoint_sha256": checkpoint_sha,
        }
        state = lambda: evaluation_state(self.experiment, evaluation, checkpoint_sha)  # noqa: E731
        return self._run_evaluation(evaluation.out_dir, state, stamp, evaluation_lock_dir(evaluation))

    def _evaluate_kept(self, curve: CurveEvaluation) -> Outcome:
        """Evaluate a kept checkpoint, after checking it is the file ``state.json`` committed."""
        step = f"evaluate {_step_name(curve.out_dir)}"
        checkpoint = self.experiment.root / curve.checkpoint
        if not checkpoint.is_file() and curve_state(self.experiment, curve) == "done":
            # done against the SHA-256 state.json records; the kept file itself is not needed any more (kept
            # checkpoints are not committed, so a fresh clone has the results without them)
            self._say(f"skip   {step} (done; its kept checkpoint is no longer on disk)")
            return Outcome(step, "skipped", log=f"{curve.out_dir}/{EVALUATE_LOG}")
        if not checkpoint.is_file() or file_sha256(checkpoint) != curve.kept.sha256:
            problem = "is missing" if not checkpoint.is_file() else "differs from the one state.json records (SHA-256)"
            self._say(f"FAILED {step} (kept checkpoint {checkpoint} {problem})")
            return Outcome(step, "failed")
        stamp = {
            "step": step,
            "arguments": curve_arguments(self.experiment, curve),
            "settings": curve_settings(self.experiment, curve),
            "checkpoint": curve.checkpoint,
            "checkpoint_sha256": curve.kept.sha256,
            "iteration": curve.kept.iteration,
            "episodes": curve.kept.episodes,
            "transitions": curve.kept.transitions,
        }
        state = lambda: curve_state(self.experiment, curve)  # noqa: E731
        source = self._final_evaluation_of(curve)
        return self._run_evaluation(curve.out_dir, state, stamp, curve.evaluation.training.run_dir, source)

    def _final_evaluation_of(self, curve: CurveEvaluation) -> str | None:
        """The final evaluation's output when it evaluated this very checkpoint with the same settings, else None.

        The last kept checkpoint is usually the final model (same SHA-256): its curve point is then the final
        evaluation's numbers, copied instead of evaluated again (the same checkpoint, settings and seeds give the
        same episodes).
        """
        final = curve.evaluation
        stamp = read_stamp(self.experiment.root / final.out_dir)
        if stamp is None or stamp.get("status") != "done":
            return None
        if not (self.experiment.root / final.out_dir / self.experiment.evaluation.results_file).is_file():
            return None
        same = evaluates_final_model(self.experiment, curve, stamp.get("checkpoint_sha256"))
        return final.out_dir if same and stamp.get("settings") == evaluation_settings(self.experiment, final) else None

    def _run_evaluation(
        self,
        out_dir: str,
        state_of: Callable[[], str],
        stamp: dict[str, Any],
        run_dir: str,
        source: str | None = None,
    ) -> Outcome:
        """Run one ``mbmeta evaluate`` into ``out_dir`` unless it is done; ``stamp`` says what it evaluates.

        A lock in the evaluated run's directory (one per output) keeps two sweeps (e.g. ``--evaluate-only`` beside
        a training sweep) from writing the same output; the state is read once the lock is held. ``source``: an
        output of the same evaluation to copy instead of running it.
        """
        step = stamp["step"]
        (self.experiment.root / run_dir).mkdir(parents=True, exist_ok=True)
        lock = RunLock(self.experiment.root / run_dir, evaluation_lock_name(out_dir))
        try:
            with lock:
                state = state_of()
                if state == "todo" and source is not None:
                    return self._copy_evaluation(source, out_dir, stamp)
                return self._run_locked_evaluation(out_dir, state, stamp)
        except RunInUseError:
            self._say(f"busy   {step} (another sweep is evaluating it)")
            return Outcome(step, "not run", log=f"{out_dir}/{EVALUATE_LOG}")

    def _run_locked_evaluation(self, out_dir: str, state: str, stamp: dict[str, Any]) -> Outcome:
        step, directory, log = stamp["step"], self.experiment.root / out_dir, f"{out_dir}/{EVALUATE_LOG}"
        if state == "done":
            self._say(f"skip   {step} (done)")
            return Outcome(step, "skipped", log=log)
        if state == "stale":
            if not self.replace:  # results that appeared after check(), e.g. a kept checkpoint's of another run
                self._say(f"FAILED {step} ({directory} holds other results; --replace moves them aside)")
                return Outcome(step, "failed", log=log)
            self._move_aside(directory)
        returncode, seconds = self._subprocess(step, stamp["arguments"], directory, EVALUATE_LOG, stamp)
        done = returncode == 0 and (directory / self.experiment.evaluation.results_file).is_file()
        status = "done" if done else "failed"
        write_stamp(directory, {**stamp, "status": status, "returncode": returncode, "seconds": seconds})
        if status == "done":
            self._say(f"done   {step} ({precise_duration(seconds)})")
        else:
            self._say(f"FAILED {step} (exit {returncode}; log {self.experiment.root / log})")
        return Outcome(step, status, seconds, log)

    def _copy_evaluation(self, source: str, out_dir: str, stamp: dict[str, Any]) -> Outcome:
        """Copy the files of the evaluation in ``source`` to ``out_dir`` and stamp it done, ``reused_from`` source."""
        step, directory = stamp["step"], self.experiment.root / out_dir
        directory.mkdir(parents=True, exist_ok=True)
        for path in sorted((self.experiment.root / source).iterdir()):
            if path.is_file() and path.name not in (STAMP_FILE, EVALUATE_LOG):
                shutil.copy2(path, directory / path.name)
        note = f"# {time.strftime('%Y-%m-%d %H:%M:%S')}: the same checkpoint and settings as {source}; copied from it\n"
        (directory / EVALUATE_LOG).write_text(note)
        write_stamp(directory, {**stamp, "status": "done", "returncode": 0, "seconds": 0.0, "reused_from": source})
        self._say(f"done   {step} (the final evaluation's, copied from {source})")
        return Outcome(step, "done", 0.0, f"{out_dir}/{EVALUATE_LOG}")

    def _subprocess(
        self, step: str, arguments: list[str], directory: Path, log_name: str, stamp: dict[str, Any]
    ) -> tuple[int, float]:
        """Run one step, its output appended to ``directory/log_name``; returns (exit code, seconds)."""
        if self._stop.is_set():
            return -1, 0.0
        directory.mkdir(parents=True, exist_ok=True)
        write_stamp(directory, {**stamp, "status": "running", "started": time.strftime("%Y-%m-%d %H:%M:%S")})
        command = [*self.command, *arguments]
        self._say(f"start  {step}")
        start = time.perf_counter()
        with open(directory / log_name, "a") as log:
            log.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} (cwd {self.experiment.root}): {shlex.join(command)}\n")
            log.flush()
            returncode = subprocess.run(
                command, cwd=self.experiment.root, env=self.env, stdout=log, stderr=subprocess.STDOUT, check=False
            ).returncode
        return returncode, round(time.perf_counter() - start, 1)

    def _move_aside(self, directory: Path) -> None:
        """Move a replaced run or result under ``runs/replaced/`` or ``results/replaced/`` (never deleted)."""
        top, *rest = directory.relative_to(self.experiment.root).parts
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.experiment.root / top / REPLACED_DIR / f"{Path(*rest)}-{stamp}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(directory), str(target))
        self._say(f"moved  {directory} -> {target}")


def _step_name(out_dir: str) -> str:
    """An evaluation output as progress lines and outcomes name it: its path under ``results/``."""
    return out_dir.removeprefix(RESULTS_DIR + "/")


# ----- scale-out: the same runs handed to an existing engine --------------------------------------------------------


def job_commands(experiment_dir: str, jobs: Sequence[Job], program: str = "mbmeta") -> list[str]:
    """One shell command per job, each self-contained: ``mbmeta sweep DIR --run NAME --jobs 1``.

    Each command trains (or resumes) its run and evaluates it, skipping what is done, so a job array can be
    re-submitted as it is; ``mbmeta sweep DIR --merge-only`` then builds the table from everything on disk.
    """
    return [f"{program} sweep {shlex.quote(experiment_dir)} --run {shlex.quote(job.name)} --jobs 1" for job in jobs]


def wandb_sweep_config(experiment: Experiment, experiment_dir: str, jobs: Sequence[Job]) -> dict[str, Any]:
    """A W&B sweep (grid) with one point per job; each agent runs ``mbmeta sweep DIR --run NAME --jobs 1``.

    ``wandb sweep <file>`` registers it and ``wandb agent <id>`` on any number of machines (sharing the experiment
    directory, e.g. over a network file system) picks up the runs; the merged table is then built with ``mbmeta
    sweep DIR --merge-only``.
    """
    return {
        "name": f"mbmeta-{experiment.name}",
        "description": f"mbmeta sweep {experiment_dir}: one training run and its evaluations per point",
        "program": "mbmeta",
        "method": "grid",
        "parameters": {"run": {"values": [job.name for job in jobs]}},
        "command": ["mbmeta", "sweep", experiment_dir, "--jobs", "1", "${args}"],
    }


def agent_report(summary: dict[str, Any], jobs: Sequence[Job]) -> dict[str, float]:
    """What a W&B sweep point reports: each of its methods' per-seed overall value and its runs' statuses.

    Keys ``<metric>/<method>`` (the training seed's headline value: the mean over its episodes, or its moderate
    average under CaDM's protocol, as in the merged table) and
    ``runs/<status>`` (how many of the point's evaluations are done, failed, ...).
    """
    wanted = {(e.method, e.seed) for job in jobs for e in job.evaluations}
    report: dict[str, float] = {}
    for metric, tables in summary.get("metrics", {}).items():
        for method, conditions in tables.get("methods", {}).items():
            for seed, value in conditions.get(summary.get("headline", "overall"), {}).get("per_seed", {}).items():
                if (method, int(seed)) in wanted:
                    report[f"{metric}/{method}"] = value
    for run in summary.get("runs", []):
        if (run["method"], run["seed"]) in wanted:
            key = f"runs/{run['status']}"
            report[key] = report.get(key, 0) + 1
    return report


def log_to_wandb_agent(summary: dict[str, Any], jobs: Sequence[Job]) -> None:
    """Under a W&B sweep agent (``WANDB_SWEEP_ID`` set), log :func:`agent_report` to the agent's run."""
    if not os.environ.get("WANDB_SWEEP_ID"):
        return
    import wandb

    run = wandb.init(job_type="sweep")
    try:
        run.log(agent_report(summary, jobs))
    finally:
        run.finish()

"""Train a stable-baselines3 baseline on a task family, evaluate it on test tasks as it learns, save and resume.

One function, :func:`train_baseline`, reads top to bottom: settings and tasks, the run directory, the model (new or
resumed), the W&B run, training with the periodic evaluation, then the final model and evaluation.

The run directory (``out``)::

    config.json          the settings; a resumed run must have the same
    learning_curve.csv   one row per evaluation (:mod:`mbmeta.baselines.curve`)
    checkpoint/          state.json + model-<steps>.zip (+ replay_buffer-<steps>.pkl for SAC): what a resume loads
    model.zip            the final model (``load_model(out)`` or ``PPO.load`` / ``SAC.load``)
    results.json/.csv    the final evaluation, in the format of ``mbmeta evaluate``
    wandb/               the offline W&B run (learning curve against env steps, sb3's training figures, results)

Every file is written atomically. Resuming (running the same command again) loads the last checkpoint, drops the
curve's points after it and trains on; it is not bit-identical to an uninterrupted run: the training environments
restart their episodes, PPO's partial rollout is lost, and the random streams are reseeded from the steps done.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from mbmeta.baselines.curve import CURVE_FILE, CurvePoint, curve_point, read_curve, steps_to_reach, write_curve
from mbmeta.baselines.envs import MODES
from mbmeta.baselines.extra import import_sb3
from mbmeta.data.atomic import atomic_write
from mbmeta.envs.family import TaskFamily
from mbmeta.evaluation.episodes import EpisodeRecord
from mbmeta.evaluation.task_design import TASK_DESIGNS
from mbmeta.types import TaskParams

ALGORITHMS: dict[str, str] = {"ppo": "PPO", "sac": "SAC"}
"""``--algo`` name -> stable-baselines3 class."""

CONFIG_FILE = "config.json"
MODEL_FILE = "model.zip"
CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.json"


@dataclass
class BaselineSettings:
    """What a baseline run trains and how it is evaluated.

    Args:
        family: task family (``mbmeta envs`` lists them).
        algo: ``ppo`` or ``sac`` (stable-baselines3, its default hyperparameters unless ``hparams`` says otherwise).
        mode: ``multitask`` (a new task from the train split at every reset; evaluated on the test tasks) or
            ``scratch`` (one test task, ``task_index``, at every reset; evaluated on that task).
        total_steps: training environment steps (all training environments together).
        eval_every: environment steps between evaluations of the learning curve (also one before training).
        eval_tasks: test tasks evaluated: the same list as ``mbmeta evaluate --tasks N --task_design D``; None:
            the whole grid.
        eval_task_design: how a discrete test grid is subsampled (``balanced`` or ``even``, as ``mbmeta evaluate
            --task_design``).
        eval_episodes: episodes per test task at each point of the learning curve (deterministic policy).
        final_episodes: episodes per test task of the final evaluation (``results.csv``; 2 as ``mbmeta evaluate``).
        task_index: scratch: which of the evaluated test tasks is learned.
        seed: seeds the algorithm, its networks, the training environments and their task draws.
        eval_seed: environment seed of the evaluation episodes (0 as ``mbmeta evaluate``; the same for every seed,
            so seeds differ only in training).
        num_envs: training environments stepped together (sb3's ``DummyVecEnv``).
        eval_envs: evaluation environments stepped together (4, as ``mbmeta evaluate --num_envs``: which episode
            runs in which environment, and so its initial state, depends on it).
        checkpoint_every: environment steps between checkpoints for resuming (at the next evaluation); 0: none.
        target_length: the curve's ``length_mean`` (the juggler's balance time) whose first reaching is reported;
            None: 90 % of the family's episode length (450 of 500 steps for the juggler).
        hparams: keyword arguments of the sb3 algorithm, e.g. ``{"n_steps": 512, "learning_rate": 1e-4}``.
    """

    family: str = "juggler_balance"
    algo: str = "ppo"
    mode: str = "multitask"
    total_steps: int = 1_000_000
    eval_every: int = 10_000
    eval_tasks: int | None = 8
    eval_task_design: str = "balanced"
    eval_episodes: int = 1
    final_episodes: int = 2
    task_index: int = 0
    seed: int = 0
    eval_seed: int = 0
    num_envs: int = 1
    eval_envs: int = 4
    checkpoint_every: int = 100_000
    target_length: float | None = None
    hparams: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise ValueError naming the first bad setting (before anything is built)."""
        if self.algo not in ALGORITHMS:
            raise ValueError(f"unknown algo {self.algo!r}; valid algos are {', '.join(ALGORITHMS)}")
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; valid modes are {', '.join(MODES)}")
        positive = ["total_steps", "eval_every", "eval_episodes", "final_episodes", "num_envs", "eval_envs"]
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("checkpoint_every", "task_index"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.eval_task_design not in TASK_DESIGNS:
            designs = ", ".join(TASK_DESIGNS)
            raise ValueError(f"eval_task_design must be one of {designs}, got {self.eval_task_design!r}")
        if self.eval_tasks is not None and self.eval_tasks < 1:
            raise ValueError(f"eval_tasks must be >= 1 (or None: the whole grid), got {self.eval_tasks}")

    @property
    def method(self) -> str:
        """The label of the results: ``ppo-multitask``, ``sac-scratch``, ..."""
        return f"{self.algo}-{self.mode}"

    def as_config(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict (``config.json``, the W&B config)."""
        return dataclasses.asdict(self)


class BaselineResult(NamedTuple):
    """What :func:`train_baseline` returns.

    Attributes:
        records: the final evaluation's episodes (``results.csv``).
        curve: the learning curve, one point per evaluation.
        model_path: the saved final model.
        resumed_from: environment steps of the checkpoint the run resumed from (None: started afresh).
        steps_to_target: first ``env_steps`` at which the curve's ``length_mean`` reached the target (None: never).
        steps_per_second: training environment steps per second of this process's training (evaluations excluded).
    """

    records: list[EpisodeRecord]
    curve: list[CurvePoint]
    model_path: Path
    resumed_from: int | None
    steps_to_target: int | None
    steps_per_second: float


def baseline_tasks(family: TaskFamily, settings: BaselineSettings) -> tuple[TaskParams | None, list[TaskParams]]:
    """The fixed training task (scratch; None for multitask) and the evaluated test tasks.

    Raises:
        ValueError: ``task_index`` beyond the evaluated test tasks.
    """
    from mbmeta.evaluation.episodes import evaluation_tasks

    tasks = evaluation_tasks(family, "test", settings.eval_tasks, seed=0, design=settings.eval_task_design)
    if settings.mode == "multitask":
        return None, tasks
    if settings.task_index >= len(tasks):
        raise ValueError(f"task_index {settings.task_index} is out of range: {len(tasks)} test tasks are evaluated")
    task = tasks[settings.task_index]
    return task, [task]


def algorithm_class(algo: str) -> Any:
    """The stable-baselines3 class of ``algo`` (``ppo`` -> ``PPO``); raises MissingExtraError without sb3."""
    sb3 = import_sb3()
    return getattr(sb3, ALGORITHMS[algo])


def check_hparams(algo_class: Any, hparams: dict[str, Any]) -> None:
    """Raise ValueError naming unknown keyword arguments of the algorithm (sb3 would raise a TypeError later)."""
    reserved = {"self", "policy", "env", "seed", "device", "verbose", "_init_setup_model"}  # set by the runner
    accepted = set(inspect.signature(algo_class.__init__).parameters) - reserved
    unknown = sorted(set(hparams) - accepted)
    if unknown:
        valid = ", ".join(sorted(accepted))
        raise ValueError(f"{algo_class.__name__} has no hyperparameter(s) {unknown}; its hyperparameters are {valid}")


def load_model(out: str | Path, path: str | Path | None = None) -> Any:
    """Load a baseline's model: ``out/model.zip`` (or ``path``) with the algorithm named in ``out/config.json``.

    Raises:
        FileNotFoundError: no such run directory or model.
    """
    out = Path(out)
    config = json.loads((out / CONFIG_FILE).read_text())
    model_path = Path(path) if path is not None else out / MODEL_FILE
    if not model_path.is_file():
        raise FileNotFoundError(f"no model at {model_path}")
    return algorithm_class(config["algo"]).load(model_path, device="cpu")


def train_baseline(
    settings: BaselineSettings,
    out: str | Path,
    *,
    wandb_init: dict[str, Any] | None = None,
    log_model: bool = True,
    log: Callable[[str], None] = print,
) -> BaselineResult:
    """Train, evaluate every ``eval_every`` steps, save the model and the final evaluation; resume if possible.

    Args:
        settings: the run's settings (checked first).
        out: the run directory; running again with the same settings resumes (or, when finished, only reloads).
        wandb_init: further ``wandb.init`` arguments (``project``, ``entity``, ``mode``, ``tags``, ``group``,
            ``name``) over the defaults: project ``mbmeta``, name ``baseline-<out name>``, group ``<out name>``.
        log_model: log the final model as a W&B model artifact when the run is online.
        log: where progress lines go.

    Raises:
        MissingExtraError: stable-baselines3 is not installed.
        ValueError: bad settings, or ``out`` holds a run with other settings.
        KeyError: an unknown family.
    """
    # ----- settings, tasks, run directory ----------------------------------------------------------------------
    settings.validate()
    algo_class = algorithm_class(settings.algo)
    check_hparams(algo_class, settings.hparams)
    from mbmeta.envs import get_family

    family = get_family(settings.family)
    train_task, eval_tasks = baseline_tasks(family, settings)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _claim(out, settings)
    state = _read_state(out)
    if state.get("finished") and (out / MODEL_FILE).is_file() and (out / "results.json").is_file():
        log(f"{out} holds a finished run: nothing to do (remove the directory to train again)")
        return _finished_result(out, settings, state)
    target = settings.target_length if settings.target_length is not None else 0.9 * family.episode_steps

    # ----- environments and model (new, or the checkpoint's) ----------------------------------------------------
    from stable_baselines3.common.logger import Logger
    from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

    from mbmeta.baselines.envs import task_env_fns
    from mbmeta.control.vector_envs import family_env_fns, make_vector_env

    resumed_from = state.get("env_steps")
    restart = int(resumed_from or 0)
    env_fns = task_env_fns(
        family, settings.num_envs, task=train_task, split="train", seed=settings.seed, restart=restart
    )
    train_env = VecMonitor(DummyVecEnv(env_fns))
    if resumed_from is None:
        model = algo_class("MlpPolicy", train_env, seed=settings.seed, device="cpu", verbose=0, **settings.hparams)
        curve: list[CurvePoint] = []
    else:
        checkpoint = out / CHECKPOINT_DIR
        model = algo_class.load(checkpoint / state["model"], env=train_env, device="cpu")
        if state.get("replay_buffer"):
            model.load_replay_buffer(checkpoint / state["replay_buffer"])
        model.set_random_seed(settings.seed + restart)
        curve = [p for p in read_curve(out / CURVE_FILE) if p.env_steps <= resumed_from]
        log(f"resuming {out} from its checkpoint at {resumed_from} environment steps")
    eval_env = make_vector_env(
        family_env_fns(family, min(settings.eval_envs, len(eval_tasks) * settings.eval_episodes))
    )

    # ----- W&B: the curve and sb3's figures against environment steps ------------------------------------------
    import wandb

    from mbmeta.baselines.wandb_output import STEP_KEY, WandbOutput
    from mbmeta.evaluation.reports import log_checkpoint_artifact, results_payload

    name = out.resolve().name
    run_id = state.get("wandb_id") or secrets.token_hex(4)
    if "wandb_id" not in state:  # a restart before the first checkpoint continues the same W&B run
        _write_state(out, {"wandb_id": run_id})
    options = {"project": "mbmeta", "name": f"baseline-{name}", "group": name, **(wandb_init or {})}
    run = wandb.init(
        dir=str(out), job_type="baseline", config=settings.as_config(), id=run_id, resume="allow", **options
    )
    run.define_metric(STEP_KEY)
    for prefix in ("baseline/*", "sb3/*"):
        run.define_metric(prefix, step_metric=STEP_KEY)
    model.set_logger(Logger(folder=None, output_formats=[WandbOutput(run)]))

    # ----- training with the periodic evaluation -----------------------------------------------------------------
    from mbmeta.baselines.callback import PeriodicEvaluation
    from mbmeta.baselines.policy import SB3Policy
    from mbmeta.evaluation.episodes import evaluate_policy

    wall_before = curve[-1].wall_seconds if curve else 0.0
    start = time.perf_counter()
    eval_seconds = 0.0
    last_checkpoint = restart

    def evaluate(episodes: int, envs: Any = None) -> list[EpisodeRecord]:
        """The deterministic policy on the evaluated tasks (in ``envs``, or in environments of its own)."""
        return evaluate_policy(
            SB3Policy(model), family, eval_tasks, method=settings.method, episodes_per_task=episodes,
            num_envs=settings.eval_envs, seed=settings.eval_seed, envs=envs,
        )  # fmt: skip

    def on_evaluation(env_steps: int, train_episodes: int) -> None:
        nonlocal eval_seconds, last_checkpoint
        began = time.perf_counter()
        records = evaluate(settings.eval_episodes, eval_env)
        eval_seconds += time.perf_counter() - began
        point = curve_point(
            records,
            env_steps=env_steps,
            train_episodes=train_episodes,
            wall_seconds=wall_before + time.perf_counter() - start,
        )
        curve.append(point)
        write_curve(curve, out / CURVE_FILE)
        figures = {k: v for k, v in dataclasses.asdict(point).items() if k != STEP_KEY and v is not None}
        run.log({STEP_KEY: env_steps, **{f"baseline/{k}": v for k, v in figures.items()}})
        log(_describe(point))
        if settings.checkpoint_every and env_steps > 0 and env_steps - last_checkpoint >= settings.checkpoint_every:
            _save_checkpoint(model, out, env_steps, train_episodes, run_id)
            last_checkpoint = env_steps

    callback = PeriodicEvaluation(
        on_evaluation,
        settings.eval_every,
        train_episodes=curve[-1].train_episodes if curve else 0,
        evaluate_at_start=not curve,
    )
    steps_before = model.num_timesteps
    try:
        remaining = settings.total_steps - model.num_timesteps
        if remaining > 0:
            model.learn(remaining, callback=callback, reset_num_timesteps=resumed_from is None)
        trained_seconds = time.perf_counter() - start - eval_seconds
        steps_per_second = (model.num_timesteps - steps_before) / max(trained_seconds, 1e-9)
        if not curve or curve[-1].env_steps != model.num_timesteps:
            on_evaluation(model.num_timesteps, callback.train_episodes)

        # ----- the final model and evaluation (the format of `mbmeta evaluate`) ----------------------------------
        from mbmeta.evaluation.reports import write_results

        model_path = atomic_write(out / MODEL_FILE, model.save)
        records = evaluate(settings.final_episodes)  # as evaluate_policy(..., num_envs=eval_envs) gives it again
        reached = steps_to_reach(curve, "length_mean", target)
        extra = {
            "settings": settings.as_config(),
            "family": family.name,
            "split": "test",
            "env_steps": model.num_timesteps,
            "target_length": target,
            "steps_to_target_length": reached,
            "train_steps_per_second": steps_per_second,
        }
        write_results(records, out, extra=extra)
        run.log({STEP_KEY: model.num_timesteps, **results_payload(records, prefix="baseline/final")})
        if log_model:
            log_checkpoint_artifact(run, model_path, name=f"baseline-{name}")
        run.summary.update({"baseline/steps_to_target_length": reached, "baseline/steps_per_second": steps_per_second})
        _write_state(out, {"finished": True, "env_steps": model.num_timesteps, "wandb_id": run_id})
        _remove_checkpoint_files(out / CHECKPOINT_DIR)  # SAC's replay buffer is ~100 MB per million steps
    finally:
        train_env.close()
        eval_env.close()
        run.finish()
    return BaselineResult(records, curve, model_path, resumed_from, reached, steps_per_second)


def _describe(point: CurvePoint) -> str:
    success = "" if point.success_rate is None else f", success {100 * point.success_rate:.0f} %"
    return (
        f"{point.env_steps:>9} steps: return {point.return_mean:.1f} ± {point.return_std:.1f}, "
        f"length {point.length_mean:.0f} (min {point.length_min:.0f}){success} [{point.wall_seconds:.0f} s]"
    )


def _claim(out: Path, settings: BaselineSettings) -> None:
    """Write ``config.json``, or check that the one there has the same settings (a resumed run)."""
    path = out / CONFIG_FILE
    config = settings.as_config()
    if path.is_file():
        try:
            stored = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is corrupt ({err}): remove it or use another --out") from None
        changed = sorted(k for k in set(config) | set(stored) if config.get(k) != stored.get(k))
        if changed:
            diff = ", ".join(f"{k}: {stored.get(k)!r} there, {config.get(k)!r} now" for k in changed)
            raise ValueError(f"{out} holds a baseline run with other settings ({diff}): use another --out")
        return
    atomic_write(path, lambda f: f.write(json.dumps(config, indent=2).encode()))


def _read_state(out: Path) -> dict[str, Any]:
    path = out / CHECKPOINT_DIR / STATE_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is corrupt ({err}): remove {out / CHECKPOINT_DIR} to start afresh") from None


def _write_state(out: Path, state: dict[str, Any]) -> None:
    (out / CHECKPOINT_DIR).mkdir(exist_ok=True)
    atomic_write(out / CHECKPOINT_DIR / STATE_FILE, lambda f: f.write(json.dumps(state, indent=2).encode()))


def _save_checkpoint(model: Any, out: Path, env_steps: int, train_episodes: int, run_id: str) -> None:
    """Model (and replay buffer) files named by their steps, then ``state.json`` naming them, then older files go.

    An interruption at any point leaves a ``state.json`` that names complete files.
    """
    directory = out / CHECKPOINT_DIR
    directory.mkdir(exist_ok=True)
    keep = {f"model-{env_steps}.zip"}
    atomic_write(directory / f"model-{env_steps}.zip", model.save)
    buffer = None
    if getattr(model, "replay_buffer", None) is not None:
        buffer = f"replay_buffer-{env_steps}.pkl"
        atomic_write(directory / buffer, model.save_replay_buffer)
        keep.add(buffer)
    state = {"env_steps": env_steps, "train_episodes": train_episodes, "model": f"model-{env_steps}.zip"}
    _write_state(out, {**state, "replay_buffer": buffer, "wandb_id": run_id})
    _remove_checkpoint_files(directory, keep)


def _remove_checkpoint_files(directory: Path, keep: frozenset[str] | set[str] = frozenset()) -> None:
    """Delete the checkpoint's model and replay-buffer files except those named in ``keep``."""
    for old in [*directory.glob("model-*.zip"), *directory.glob("replay_buffer-*.pkl")]:
        if old.name not in keep:
            old.unlink(missing_ok=True)


def _finished_result(out: Path, settings: BaselineSettings, state: dict[str, Any]) -> BaselineResult:
    """The result of a finished run, read back from its files."""
    results = json.loads((out / "results.json").read_text())
    records = [EpisodeRecord(**r) for r in results["episodes"]]
    curve = read_curve(out / CURVE_FILE)
    reached = results.get("steps_to_target_length")
    return BaselineResult(records, curve, out / MODEL_FILE, state.get("env_steps"), reached, float("nan"))

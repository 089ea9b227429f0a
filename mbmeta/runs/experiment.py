"""An experiment: the design of a reported comparison, declared in ``experiments/<name>/experiment.yaml``.

Everything a reported number depends on is fixed here before running: the family, the ``mbmeta train`` config
files (stored inside the experiment directory), the methods, the training seeds, the evaluation settings, what the
report compares, and the budget. Example::

    family: pendulum
    train:
      configs: [configs/pendulum.yaml]          # composed in this order, then each method's files
      seeds: [0, 1, 2]                          # training seeds (--loop.seed), for every method unless it says
      order: method                             # jobs method by method (default), or `seed`: every method's seed 0
                                                # first, so a sweep stopped early leaves complete pairs
    methods:
      none: configs/methods/none.yaml           # one file, or {configs: [...], seeds: [...]}
      context: {configs: [configs/methods/context.yaml]}
      context-dp100: {model_of: context, agent: {disagreement_penalty: 100}}   # context's models, evaluated so
      context-bounded: {model_of: context, agent: {bound_latent: true}, curve: false}  # final models only: no
                                                # learning curve of its own (with every_kept_checkpoint)
      context-cadm: {model_of: context, protocol_estimator: first_finished}   # with evaluate.protocol only:
                                                # CaDM's own estimator (mbmeta evaluate --protocol_estimator)
      random: {policy: random}                  # reference policies: no training; `mbmeta evaluate --policy`
      scripted: {policy: scripted, seeds: [0]}  # seeds: policy seeds (default train.seeds), paired with training
                                                # seeds in comparisons; scripted is deterministic
    evaluate:                                   # mbmeta evaluate's settings, for every method
      split: test
      tasks: null                               # null: the whole test grid
      task_design: balanced                     # how `tasks` subsamples a grid: balanced, or even (the design
                                                # of experiments from before balanced existed)
      episodes_per_task: 3
      num_envs: 16
      seeds: [0]                                # evaluation seeds (--seed)
      agent: {}                                 # --agent.* overrides (a method's own `agent` goes on top)
      every_kept_checkpoint: false              # also evaluate every checkpoint the loop keeps
                                                # (loop.keep_checkpoints_every): the learning curve
      curve_episodes: null                      # episodes per task (per condition with protocol) of those
                                                # evaluations; null: as the final one's
    # or, CaDM's protocol (cadm_* families): `mbmeta evaluate --protocol cadm`, the train set and each test
    # condition; then split, tasks, episodes_per_task, error_horizon and video_tasks do not apply:
    #   evaluate: {protocol: cadm, protocol_episodes: null, num_envs: 10, seeds: [0]}   # null: CaDM's count
    report:
      metrics: [episode_return]                 # the first is the headline; also length, success, measure.<name>
      comparisons: [[context, none]]            # paired differences first − second
      conditions: {light: {mass: [0.2, 0.4]}}   # named test conditions: parameter -> values
      curve_target: null                        # with every_kept_checkpoint: the headline value whose first
                                                # reaching (transitions) the learning curve reports per seed
      published:                                # numbers a paper reports, set beside ours (headline metric)
        source: "CaDM (Lee, Seo et al., ICML 2020), Table 1"
        values: {moderate: {none: -985.7, context: -705.5}}   # condition -> method -> number
    budget: {transitions: 9600}                 # recorded in the table (free-form)

Files are laid out as::

    runs/<method>-seed<s>/                      the mbmeta train run directory (plus the runner's train.log, sweep.json)
    results/<method>-seed<s>/eval<e>/           one mbmeta evaluate output (evaluate.log, sweep.json); for a
                                                reference policy <s> is its policy seed
    results/<method>-seed<s>/curve/iteration_NNN/eval<e>/   the evaluation of a kept checkpoint
    results/table.md, results/summary.json      the merged table
    results/curve.md, curve.json, curve.png     the learning curve (with every_kept_checkpoint)
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mbmeta.evaluation.protocol import ESTIMATORS
from mbmeta.evaluation.tables import METRICS, OVERALL, is_metric
from mbmeta.evaluation.task_design import TASK_DESIGNS
from mbmeta.runs.run_dir import KeptCheckpoint

EXPERIMENT_FILE = "experiment.yaml"
RUNS_DIR = "runs"
RESULTS_DIR = "results"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")

TOP_KEYS = {"family", "description", "train", "methods", "evaluate", "report", "budget"}
TRAIN_KEYS = {"configs", "seeds", "order"}
METHOD_KEYS = {"configs", "seeds", "model_of", "agent", "policy", "curve", "protocol_estimator"}
REFERENCE_POLICIES = ("random", "scripted")  # `mbmeta evaluate --policy`: methods without a model
EVALUATE_KEYS = {
    "split", "tasks", "task_design", "episodes_per_task", "num_envs", "seeds", "error_horizon", "video_tasks", "agent",
    "protocol", "protocol_episodes", "every_kept_checkpoint", "curve_episodes",
}  # fmt: skip
PROTOCOLS = ("cadm",)
# evaluate keys of `mbmeta evaluate`'s own evaluation that the protocol replaces (refused beside it)
NOT_WITH_PROTOCOL = ("split", "tasks", "task_design", "episodes_per_task", "error_horizon", "video_tasks")
ORDERS = ("method", "seed")
CURVE_DIR = "curve"
REPORT_KEYS = {"metrics", "comparisons", "conditions", "curve_target", "published"}
PUBLISHED_KEYS = {"source", "values"}


class ExperimentError(ValueError):
    """An experiment file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class EvaluationSettings:
    """How every method is evaluated (``mbmeta evaluate`` options).

    Attributes:
        split: ``test``, ``train`` or ``validation`` (families that define one).
        tasks: number of tasks (None: the split's whole grid).
        task_design: how ``tasks`` subsamples a grid (``balanced`` or ``even``; ``mbmeta evaluate --task_design``).
        episodes_per_task: episodes (environment seeds) per task.
        num_envs: environments stepped together (changes the planner's random stream, hence the numbers).
        seeds: evaluation seeds (``--seed``): each is one evaluation of every model.
        error_horizon: longest horizon of the prediction-error curve.
        video_tasks: GIFs of the first N tasks (0: none; videos do not change the numbers).
        agent: ``--agent.*`` overrides for every method.
        protocol: ``cadm`` for CaDM's evaluation protocol (``mbmeta evaluate --protocol cadm``), None for the
            test-split evaluation above.
        protocol_episodes: episodes per protocol condition (None: the family's, CaDM's count).
        every_kept_checkpoint: also evaluate every checkpoint a run keeps (``loop.keep_checkpoints_every``).
        curve_episodes: episodes per task (per condition with a protocol) when evaluating kept checkpoints; None:
            as the final evaluation.
    """

    split: str = "test"
    tasks: int | None = None
    task_design: str = "balanced"
    episodes_per_task: int = 2
    num_envs: int = 4
    seeds: tuple[int, ...] = (0,)
    error_horizon: int = 10
    video_tasks: int = 0
    agent: dict[str, Any] = field(default_factory=dict)
    protocol: str | None = None
    protocol_episodes: int | None = None
    every_kept_checkpoint: bool = False
    curve_episodes: int | None = None

    @property
    def results_file(self) -> str:
        """The file an evaluation writes its episodes to (present once it is done)."""
        return "protocol.json" if self.protocol else "results.json"


@dataclass(frozen=True)
class Method:
    """A method: the configs its models are trained with (or whose models it reuses) and how it is evaluated.

    Attributes:
        name: the label in every table (``--labels``).
        configs: train config files composed after the experiment's (paths relative to the experiment directory);
            empty for a method that evaluates another's models.
        seeds: training seeds.
        model_of: the method whose trained models this one evaluates (its own name when it trains or is a
            reference policy).
        agent: ``--agent.*`` overrides for its evaluation, on top of the experiment's.
        policy: a reference policy (``random`` or ``scripted``, ``mbmeta evaluate --policy``) evaluated instead of
            a model; its seeds are policy seeds. None for a method with models.
        curve: with ``evaluate.every_kept_checkpoint``, also evaluate its kept checkpoints (False: final models
            only, e.g. for a method that re-evaluates another's models in another way).
        protocol_estimator: under ``evaluate.protocol``, ``first_finished`` for CaDM's own estimator (``mbmeta
            evaluate --protocol_estimator``); None: every episode run to its end.
    """

    name: str
    configs: tuple[str, ...]
    seeds: tuple[int, ...]
    model_of: str
    agent: dict[str, Any] = field(default_factory=dict)
    policy: str | None = None
    curve: bool = True
    protocol_estimator: str | None = None

    @property
    def trains(self) -> bool:
        """Whether this method has training runs of its own."""
        return self.policy is None and self.model_of == self.name


@dataclass(frozen=True)
class TrainingRun:
    """One ``mbmeta train`` run: a method's configs at one seed."""

    method: str
    seed: int
    configs: tuple[str, ...]  # every config file in order, relative to the experiment directory

    @property
    def name(self) -> str:
        """``<method>-seed<s>``."""
        return run_name(self.method, self.seed)

    @property
    def run_dir(self) -> str:
        """The run directory, relative to the experiment directory."""
        return f"{RUNS_DIR}/{self.name}"


@dataclass(frozen=True)
class EvaluationRun:
    """One ``mbmeta evaluate`` of one method's model of one training seed, at one evaluation seed.

    For a reference policy there is no model: ``training`` is None, ``policy`` names it and ``seed`` is its policy
    seed (``mbmeta evaluate --policy P --policy_seed S``).
    """

    method: str
    seed: int
    eval_seed: int
    training: TrainingRun | None
    policy: str | None = None

    @property
    def job_name(self) -> str:
        """The job it belongs to (``mbmeta sweep --run``): its training run, or ``<method>-seed<s>`` for a policy."""
        return run_name(self.method, self.seed) if self.training is None else self.training.name

    @property
    def out_dir(self) -> str:
        """The output directory, relative to the experiment directory."""
        return f"{RESULTS_DIR}/{run_name(self.method, self.seed)}/eval{self.eval_seed}"


@dataclass(frozen=True)
class CurveEvaluation:
    """One ``mbmeta evaluate`` of a kept checkpoint (a point of the learning curve) at one evaluation seed.

    Attributes:
        evaluation: the final model's evaluation of the same method, training seed and evaluation seed.
        kept: the kept checkpoint, as its run's ``state.json`` records it.
    """

    evaluation: EvaluationRun
    kept: KeptCheckpoint

    @property
    def checkpoint(self) -> str:
        """The checkpoint, relative to the experiment directory."""
        return f"{self.evaluation.training.run_dir}/{self.kept.checkpoint}"

    @property
    def out_dir(self) -> str:
        """The output directory, relative to the experiment directory."""
        e = self.evaluation
        where = f"{CURVE_DIR}/iteration_{self.kept.iteration:03d}/eval{e.eval_seed}"
        return f"{RESULTS_DIR}/{run_name(e.method, e.seed)}/{where}"


def run_name(method: str, seed: int) -> str:
    """The directory name of a method's training seed: ``<method>-seed<s>``."""
    return f"{method}-seed{seed}"


@dataclass(frozen=True)
class Published:
    """Numbers a publication reports for some methods, set beside ours in the merged table.

    Attributes:
        source: where they come from (e.g. ``"CaDM (Lee, Seo et al., ICML 2020), Table 1"``).
        values: condition -> method -> the published value of the headline metric (``report.metrics[0]``); a
            condition is ``overall`` or a named condition, or under a protocol one of its conditions or averages
            (e.g. ``moderate``).
    """

    source: str
    values: dict[str, dict[str, float]]


@dataclass(frozen=True)
class Experiment:
    """A loaded, validated ``experiment.yaml`` (see the module docstring).

    Attributes:
        root: the experiment directory.
        family: task-family name.
        description: one paragraph on what the experiment asks.
        train_configs: train config files composed first (relative to ``root``).
        methods: name -> method, in the file's order.
        evaluation: the evaluation settings.
        metrics: metrics reported (the first is the headline).
        comparisons: paired differences ``(first, second)``.
        conditions: named test conditions: name -> parameter -> values.
        budget: free-form description of the budget (recorded in the table).
        order: ``method`` (jobs method by method) or ``seed`` (every method's seed 0, then seed 1, ...).
        curve_target: a value of the headline metric; the learning curve reports, per method and seed, the
            transitions of the first kept checkpoint whose overall value is at or above it (sample efficiency).
        published: numbers a publication reports, compared with ours in the merged table (None: none).
    """

    root: Path
    family: str
    description: str
    train_configs: tuple[str, ...]
    methods: dict[str, Method]
    evaluation: EvaluationSettings
    metrics: tuple[str, ...] = ("episode_return",)
    comparisons: tuple[tuple[str, str], ...] = ()
    conditions: dict[str, dict[str, tuple[float, ...]]] = field(default_factory=dict)
    budget: dict[str, Any] = field(default_factory=dict)
    order: str = "method"
    curve_target: float | None = None
    published: Published | None = None

    @property
    def name(self) -> str:
        """The experiment directory's name."""
        return self.root.name

    def training_runs(self) -> list[TrainingRun]:
        """Every training run, by method (file order), then seed; by seed first with ``order: seed``."""
        runs = [
            TrainingRun(m.name, seed, (*self.train_configs, *m.configs))
            for m in self.methods.values()
            if m.trains
            for seed in m.seeds
        ]
        return self._ordered(runs)

    def evaluation_runs(self) -> list[EvaluationRun]:
        """Every evaluation, by method, seed, evaluation seed; by seed first with ``order: seed``."""
        trainings = {(t.method, t.seed): t for t in self.training_runs()}
        evaluations = [
            EvaluationRun(m.name, seed, eval_seed, None, m.policy)
            if m.policy is not None
            else EvaluationRun(m.name, seed, eval_seed, trainings[(m.model_of, seed)])
            for m in self.methods.values()
            for seed in m.seeds
            for eval_seed in self.evaluation.seeds
        ]
        return self._ordered(evaluations)

    def _ordered(self, runs: list[Any]) -> list[Any]:
        return sorted(runs, key=lambda run: run.seed) if self.order == "seed" else runs  # stable: methods in order

    def curve_evaluations(self, evaluation: EvaluationRun, kept: Sequence[KeptCheckpoint]) -> list[CurveEvaluation]:
        """The evaluations of a run's kept checkpoints for one final evaluation.

        None unless ``every_kept_checkpoint``, none for a reference policy (it has no checkpoint) and none for a
        method declared with ``curve: false``.
        """
        if not self.evaluation.every_kept_checkpoint or evaluation.training is None:
            return []
        if not self.methods[evaluation.method].curve:
            return []
        return [CurveEvaluation(evaluation, k) for k in sorted(kept, key=lambda k: k.iteration)]

    def evaluation_agent(self, method: str) -> dict[str, Any]:
        """The ``--agent.*`` overrides a method is evaluated with (the experiment's, then its own)."""
        return {**self.evaluation.agent, **self.methods[method].agent}


def load_experiment(path: str | Path) -> Experiment:
    """Read and validate an experiment (a directory holding ``experiment.yaml``, or the file itself).

    Raises:
        ExperimentError: a missing file, unknown key, wrong type, unknown method or missing config file; the
            message names the file and the key.
    """
    path = Path(path)
    file = path / EXPERIMENT_FILE if path.is_dir() else path
    if not file.is_file():
        raise ExperimentError(f"{file}: no such experiment file (an experiment directory holds {EXPERIMENT_FILE})")
    try:
        raw = yaml.safe_load(file.read_text())
    except yaml.YAMLError as err:
        raise ExperimentError(f"{file}: not valid YAML ({' '.join(str(err).split())})") from err
    return _Parser(file).experiment(raw)


class _Parser:
    """Validates the YAML document of one experiment file; every error names the file and the key."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.root = file.parent

    def fail(self, key: str, problem: str) -> ExperimentError:
        return ExperimentError(f"{self.file}: {key}: {problem}")

    def mapping(self, value: Any, key: str, allowed: set[str] | None = None) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(key, f"expected a mapping, got {type(value).__name__}")
        unknown = sorted(str(k) for k in value if allowed is not None and k not in allowed)
        if unknown:
            raise self.fail(key, f"unknown key {unknown[0]!r} (expected one of {', '.join(sorted(allowed or ()))})")
        return dict(value)

    def integer(self, value: Any, key: str, minimum: int | None = None) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(key, f"expected an integer, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.fail(key, f"expected an integer >= {minimum}, got {value}")
        return value

    def seeds(self, value: Any, key: str) -> tuple[int, ...]:
        if not isinstance(value, list) or not value:
            raise self.fail(key, f"expected a non-empty list of integer seeds, got {value!r}")
        seeds = tuple(self.integer(v, key, minimum=0) for v in value)
        if len(set(seeds)) != len(seeds):
            raise self.fail(key, f"seeds repeat: {list(seeds)}")
        return seeds

    def text(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"expected a non-empty string, got {value!r}")
        return value

    def config_files(self, value: Any, key: str) -> tuple[str, ...]:
        files = [value] if isinstance(value, str) else value
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise self.fail(key, f"expected a file or a list of files, got {value!r}")
        for name in files:
            if Path(name).is_absolute() or ".." in Path(name).parts:
                raise self.fail(key, f"{name!r} must be a path inside the experiment directory")
            if not (self.root / name).is_file():
                raise self.fail(key, f"config file {name!r} does not exist in {self.root}")
        return tuple(files)

    def experiment(self, raw: Any) -> Experiment:
        if raw is None:
            raise self.fail("(file)", "empty experiment file")
        raw = self.mapping(raw, "(top level)", TOP_KEYS)
        for key in ("family", "train", "methods", "evaluate"):
            if key not in raw:
                raise self.fail(key, "missing (required)")
        family = self.text(raw["family"], "family")
        train = self.mapping(raw["train"], "train", TRAIN_KEYS)
        if "configs" not in train:
            raise self.fail("train.configs", "missing (required)")
        train_configs = self.config_files(train["configs"], "train.configs")
        default_seeds = self.seeds(train.get("seeds", [0]), "train.seeds")
        order = train.get("order", "method")
        if order not in ORDERS:
            raise self.fail("train.order", f"expected one of {', '.join(ORDERS)}, got {order!r}")
        methods = self.methods(raw["methods"], default_seeds)
        evaluation = self.evaluation(raw["evaluate"])
        report = self.mapping(raw.get("report", {}), "report", REPORT_KEYS)
        metrics = report.get("metrics", ["episode_return"])
        if not isinstance(metrics, list) or not metrics:
            raise self.fail("report.metrics", f"expected a non-empty list, got {metrics!r}")
        for metric in metrics:
            if not isinstance(metric, str) or not is_metric(metric):
                expected = f"one of {', '.join(METRICS)} or measure.<name>"
                raise self.fail("report.metrics", f"unknown metric {metric!r} (expected {expected})")
        comparisons = self.comparisons(report.get("comparisons", []), methods)
        conditions = self.conditions(report.get("conditions", {}))
        if evaluation.protocol is not None:
            policies = [m.name for m in methods.values() if m.policy is not None]
            if policies:
                raise self.fail(
                    f"methods.{policies[0]}.policy",
                    f"a reference policy is not evaluated under evaluate.protocol {evaluation.protocol} "
                    "(the protocol evaluates checkpoints)",
                )
            if metrics != ["episode_return"]:
                raise self.fail(
                    "report.metrics", f"evaluate.protocol {evaluation.protocol} reports episode_return only"
                )
            if conditions:
                raise self.fail("report.conditions", f"evaluate.protocol {evaluation.protocol} has its own conditions")
        else:
            estimating = next((m.name for m in methods.values() if m.protocol_estimator is not None), None)
            if estimating is not None:
                raise self.fail(f"methods.{estimating}.protocol_estimator", "applies only with evaluate.protocol")
        curve_target = report.get("curve_target")
        if curve_target is not None:
            if isinstance(curve_target, bool) or not isinstance(curve_target, int | float):
                raise self.fail("report.curve_target", f"expected a number, got {curve_target!r}")
            if not evaluation.every_kept_checkpoint:
                raise self.fail("report.curve_target", "needs evaluate.every_kept_checkpoint (a learning curve)")
        published = None
        if report.get("published") is not None:
            published = self.published(report["published"], methods, family, evaluation, conditions)
        budget = self.mapping(raw.get("budget", {}), "budget")
        description = raw.get("description", "")
        if not isinstance(description, str):
            raise self.fail("description", f"expected a string, got {type(description).__name__}")
        return Experiment(
            root=self.root,
            family=family,
            description=" ".join(description.split()),
            train_configs=train_configs,
            methods=methods,
            evaluation=evaluation,
            metrics=tuple(metrics),
            comparisons=comparisons,
            conditions=conditions,
            budget=budget,
            order=order,
            curve_target=None if curve_target is None else float(curve_target),
            published=published,
        )

    def methods(self, raw: Any, default_seeds: tuple[int, ...]) -> dict[str, Method]:
        raw = self.mapping(raw, "methods")
        if not raw:
            raise self.fail("methods", "no methods declared")
        declared: dict[str, dict[str, Any]] = {}
        for name, spec in raw.items():
            key = f"methods.{name}"
            if not isinstance(name, str) or not NAME_PATTERN.match(name):
                raise self.fail(key, "a method name must be letters, digits and _ . + - (it names directories)")
            spec = {"configs": spec} if isinstance(spec, (str, list)) else self.mapping(spec, key, METHOD_KEYS)
            if "policy" in spec:
                other = next((k for k in spec if k not in ("policy", "seeds")), None)
                if other is not None:
                    raise self.fail(f"{key}.{other}", "does not go with 'policy' (a reference policy has no model)")
            elif ("configs" in spec) == ("model_of" in spec):
                raise self.fail(
                    key,
                    "give either 'configs' (it trains), 'model_of' (it evaluates another's models) or 'policy' "
                    f"(a reference policy: {' or '.join(REFERENCE_POLICIES)})",
                )
            declared[name] = spec
        methods = {}
        for name, spec in declared.items():
            key = f"methods.{name}"
            if "policy" in spec:
                methods[name] = self.policy_method(name, spec, default_seeds)
                continue
            agent = self.mapping(spec.get("agent", {}), f"{key}.agent")
            curve = spec.get("curve", True)
            if not isinstance(curve, bool):
                raise self.fail(f"{key}.curve", f"expected true or false, got {curve!r}")
            estimator = spec.get("protocol_estimator")
            if estimator is not None and estimator not in ESTIMATORS:
                expected = ", ".join(ESTIMATORS)
                raise self.fail(f"{key}.protocol_estimator", f"expected one of {expected}, got {estimator!r}")
            estimator = None if estimator == "all" else estimator
            if "configs" in spec:
                seeds = self.seeds(spec.get("seeds", list(default_seeds)), f"{key}.seeds")
                configs = self.config_files(spec["configs"], f"{key}.configs")
                methods[name] = Method(name, configs, seeds, name, agent, curve=curve, protocol_estimator=estimator)
                continue
            owner = spec["model_of"]
            if owner not in declared or "configs" not in declared[owner]:
                trained = [n for n, s in declared.items() if "configs" in s]
                raise self.fail(f"{key}.model_of", f"{owner!r} is not a method that trains (one of {trained})")
            owner_seeds = self.seeds(declared[owner].get("seeds", list(default_seeds)), f"methods.{owner}.seeds")
            seeds = self.seeds(spec.get("seeds", list(owner_seeds)), f"{key}.seeds")
            missing = sorted(set(seeds) - set(owner_seeds))
            if missing:
                raise self.fail(f"{key}.seeds", f"{owner!r} has no training seed {missing[0]}")
            methods[name] = Method(name, (), seeds, owner, agent, curve=curve, protocol_estimator=estimator)
        return methods

    def policy_method(self, name: str, spec: dict[str, Any], default_seeds: tuple[int, ...]) -> Method:
        """A reference-policy method: its policy and policy seeds (by default the experiment's training seeds)."""
        key = f"methods.{name}"
        if spec["policy"] not in REFERENCE_POLICIES:
            expected = ", ".join(REFERENCE_POLICIES)
            raise self.fail(f"{key}.policy", f"expected one of {expected}, got {spec['policy']!r}")
        seeds = self.seeds(spec.get("seeds", list(default_seeds)), f"{key}.seeds")
        return Method(name, (), seeds, name, policy=spec["policy"])

    def evaluation(self, raw: Any) -> EvaluationSettings:
        raw = self.mapping(raw, "evaluate", EVALUATE_KEYS)
        settings: dict[str, Any] = {}
        if "split" in raw:
            if raw["split"] not in ("test", "train", "validation"):
                raise self.fail("evaluate.split", f"expected test, train or validation, got {raw['split']!r}")
            settings["split"] = raw["split"]
        if raw.get("tasks") is not None:
            settings["tasks"] = self.integer(raw["tasks"], "evaluate.tasks", minimum=1)
        if "task_design" in raw:
            if raw["task_design"] not in TASK_DESIGNS:
                designs = ", ".join(TASK_DESIGNS)
                raise self.fail("evaluate.task_design", f"expected one of {designs}, got {raw['task_design']!r}")
            settings["task_design"] = raw["task_design"]
        for name in ("episodes_per_task", "num_envs", "error_horizon"):
            if name in raw:
                settings[name] = self.integer(raw[name], f"evaluate.{name}", minimum=1)
        if "video_tasks" in raw:
            settings["video_tasks"] = self.integer(raw["video_tasks"], "evaluate.video_tasks", minimum=0)
        if "seeds" in raw:
            settings["seeds"] = self.seeds(raw["seeds"], "evaluate.seeds")
        settings["agent"] = self.mapping(raw.get("agent", {}), "evaluate.agent")
        protocol = raw.get("protocol")
        if protocol is not None:
            if protocol not in PROTOCOLS:
                raise self.fail(
                    "evaluate.protocol", f"expected one of {', '.join(PROTOCOLS)} or null, got {protocol!r}"
                )
            ignored = [key for key in NOT_WITH_PROTOCOL if key in raw]
            if ignored:
                raise self.fail(f"evaluate.{ignored[0]}", f"does not apply with evaluate.protocol {protocol}")
            settings["protocol"] = protocol
        if raw.get("protocol_episodes") is not None:
            if protocol is None:
                raise self.fail("evaluate.protocol_episodes", "applies only with evaluate.protocol")
            settings["protocol_episodes"] = self.integer(raw["protocol_episodes"], "evaluate.protocol_episodes", 1)
        every = raw.get("every_kept_checkpoint", False)
        if not isinstance(every, bool):
            raise self.fail("evaluate.every_kept_checkpoint", f"expected true or false, got {every!r}")
        settings["every_kept_checkpoint"] = every
        if raw.get("curve_episodes") is not None:
            if not every:
                raise self.fail("evaluate.curve_episodes", "applies only with evaluate.every_kept_checkpoint: true")
            settings["curve_episodes"] = self.integer(raw["curve_episodes"], "evaluate.curve_episodes", 1)
        return EvaluationSettings(**settings)

    def comparisons(self, raw: Any, methods: Mapping[str, Method]) -> tuple[tuple[str, str], ...]:
        if not isinstance(raw, list):
            raise self.fail("report.comparisons", f"expected a list of [first, second] pairs, got {raw!r}")
        pairs = []
        for pair in raw:
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(m, str) for m in pair)):
                raise self.fail("report.comparisons", f"expected a [first, second] pair of method names, got {pair!r}")
            for name in pair:
                if name not in methods:
                    raise self.fail("report.comparisons", f"unknown method {name!r} (methods: {', '.join(methods)})")
            pairs.append((pair[0], pair[1]))
        return tuple(pairs)

    def conditions(self, raw: Any) -> dict[str, dict[str, tuple[float, ...]]]:
        raw = self.mapping(raw, "report.conditions")
        conditions = {}
        for name, values in raw.items():
            key = f"report.conditions.{name}"
            values = self.mapping(values, key)
            if not values:
                raise self.fail(key, "names no parameter")
            parsed = {}
            for parameter, allowed in values.items():
                ok = isinstance(allowed, list) and allowed
                if not ok or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in allowed):
                    raise self.fail(f"{key}.{parameter}", f"expected a non-empty list of numbers, got {allowed!r}")
                parsed[str(parameter)] = tuple(float(v) for v in allowed)
            conditions[str(name)] = parsed
        return conditions

    def published(
        self,
        raw: Any,
        methods: Mapping[str, Method],
        family: str,
        evaluation: EvaluationSettings,
        conditions: Mapping[str, Any],
    ) -> Published:
        raw = self.mapping(raw, "report.published", PUBLISHED_KEYS)
        for key in sorted(PUBLISHED_KEYS):
            if key not in raw:
                raise self.fail(f"report.published.{key}", "missing (required)")
        source = raw["source"]
        if not isinstance(source, str) or not source.strip():
            raise self.fail("report.published.source", f"expected a non-empty text, got {source!r}")
        known = _published_conditions(family, evaluation, conditions)
        values: dict[str, dict[str, float]] = {}
        for condition, by_method in self.mapping(raw["values"], "report.published.values").items():
            key = f"report.published.values.{condition}"
            if str(condition) not in known:
                raise self.fail(key, f"unknown condition (expected one of {', '.join(known)})")
            by_method = self.mapping(by_method, key)
            if not by_method:
                raise self.fail(key, "names no method")
            for method, value in by_method.items():
                if method not in methods:
                    raise self.fail(f"{key}.{method}", f"unknown method (methods: {', '.join(methods)})")
                number = isinstance(value, int | float) and not isinstance(value, bool)
                if not number or not math.isfinite(value):
                    raise self.fail(f"{key}.{method}", f"expected a finite number, got {value!r}")
                values.setdefault(str(condition), {})[str(method)] = float(value)
        return Published(" ".join(source.split()), values)


def _published_conditions(family: str, evaluation: EvaluationSettings, conditions: Mapping[str, Any]) -> list[str]:
    """The conditions a published number may be given for: the table's own (its protocol's, or overall and named)."""
    if evaluation.protocol is None:
        return [OVERALL, *conditions]
    from mbmeta.evaluation.protocol import GROUP_ORDER, TEST, TRAIN

    names = [TRAIN]
    try:
        from mbmeta.envs import get_family
        from mbmeta.evaluation.protocol import protocol_conditions

        names = [c.name for c in protocol_conditions(get_family(family))]  # train, c0, c1, ...
    except (KeyError, ValueError):  # an unknown family fails elsewhere with its own message
        pass
    return [*names, *GROUP_ORDER, TEST]

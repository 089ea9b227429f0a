"""CaDM's evaluation protocol: returns per test condition, and the moderate / extreme averages of its Table 1.

CaDM (``cadm/trainers/mb_trainer.py``, ``cadm/samplers/utils.py``) evaluates each test range of its config as its own
condition ``c<i>``: an environment whose every reset draws each parameter uniformly from that condition's value
lists, run until ``total_test`` episodes (10; 20 for Ant and crippled HalfCheetah) have finished; a condition's score
is the mean return of those episodes, and the test score the mean over conditions. The inner conditions are the
"moderate" test set, the outer ones the "extreme" one.

Here every condition (and the train set, drawn the same way from the train split) gets ``N`` episodes, each with its
own task drawn as CaDM draws it (:meth:`TaskFamily.sample` on the condition: a region uniformly, then every
parameter uniformly from its set), and its own start state. The report gives, per method, each condition's mean
return, standard error and ``n``; the moderate and extreme averages (the mean of their conditions' means, with the
standard error of that mean); and the test average over all test conditions (CaDM's logged ``test_tot``). The
statistics are :mod:`mbmeta.evaluation.statistics`'; the experiment runner reduces each training seed to these
numbers (:func:`protocol_scores` of its episodes) before summarising across seeds.

Every method sees the same tasks and environment seeds, so the numbers compare between methods.

CaDM's own estimator is offered too (``estimator="first_finished"``, ``mbmeta evaluate --protocol_estimator``): its
10 environments restart their episodes, each restart on a new task of the condition, and the first ``N`` episodes to
finish (with any finishing on the same step) are averaged. Where episodes have a fixed length (Pendulum,
HalfCheetah) that is ``N`` episodes as above; where failures end them early (CartPole) short, failed episodes weigh
more, so a number compared with CaDM's table on such a family should be measured this way as well.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mbmeta.control.settings import AgentSettings
from mbmeta.data.atomic import atomic_write
from mbmeta.envs import families
from mbmeta.envs.family import Condition, TaskFamily, describe_regions
from mbmeta.evaluation.episodes import EpisodeRecord, evaluate_agent
from mbmeta.evaluation.reports import MEASURE_PREFIX, measure_names
from mbmeta.evaluation.statistics import estimate, mean_of_means
from mbmeta.models.latent_range import LatentRange
from mbmeta.provenance import software_versions
from mbmeta.training.module import MetaDynamicsModule
from mbmeta.types import TaskParams

TRAIN = "train"
ESTIMATORS = ("all", "first_finished")  # N episodes each run to its end; CaDM's first N to finish
GROUP_ORDER = ("moderate", "extreme")
TEST = "test"  # the average over every test condition


@dataclass(frozen=True)
class ProtocolEpisode:
    """One episode of the protocol: which condition it belongs to, and the episode itself."""

    condition: str
    group: str
    record: EpisodeRecord


@dataclass(frozen=True)
class Score:
    """A mean return with its standard error.

    Attributes:
        method: the model's label.
        name: the condition (``train``, ``c0``, ...) or average (``moderate``, ``extreme``, ``test``).
        group: the condition's group (the average's own name for an average).
        mean: mean return (for an average: the mean of its conditions' means).
        stderr: standard error of ``mean`` (NaN with a single episode).
        n: episodes behind it.
    """

    method: str
    name: str
    group: str
    mean: float
    stderr: float
    n: int


def protocol_conditions(family: TaskFamily) -> list[Condition]:
    """The train set and the family's test conditions, in report order.

    Raises:
        ValueError: the family defines no test conditions (the message names those that do).
    """
    if not family.conditions:
        having = [f.name for f in families() if f.conditions]
        raise ValueError(
            f"family {family.name!r} has no reference-protocol test conditions; families with CaDM's: {having}"
        )
    return [Condition(TRAIN, TRAIN, family.train), *family.conditions]


def protocol_tasks(family: TaskFamily, episodes: int, seed: int) -> dict[str, list[TaskParams]]:
    """``episodes`` tasks per condition, drawn as CaDM draws them (one independent generator per condition)."""
    if episodes < 1:
        raise ValueError(f"episodes per condition must be >= 1, got {episodes}")
    return {
        c.name: family.sample(np.random.default_rng([seed, k]), episodes, c.name)
        for k, c in enumerate(protocol_conditions(family))
    }


def evaluate_protocol(
    module: MetaDynamicsModule,
    family: TaskFamily,
    *,
    method: str | None = None,
    episodes: int | None = None,
    agent: AgentSettings | None = None,
    num_envs: int = 10,
    seed: int = 0,
    latent_range: LatentRange | None = None,
    estimator: str = "all",
) -> list[ProtocolEpisode]:
    """Run the protocol's episodes for one model: ``episodes`` per condition (default: the family's, CaDM's).

    Condition ``k`` uses environment seeds from ``seed + 1000 k`` (one per sub-environment), the same for every model.
    ``latent_range`` is required when ``agent.bound_latent`` (see :func:`~mbmeta.evaluation.episodes.evaluate_agent`).
    ``estimator``: ``all`` (each of the ``episodes`` tasks runs one episode to its end) or ``first_finished``
    (CaDM's: ``num_envs`` environments restart on the condition's next tasks until ``episodes`` have finished; the
    first tasks are the same as ``all``'s).
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"protocol estimator must be one of {', '.join(ESTIMATORS)}, got {estimator!r}")
    episodes = episodes or family.protocol_episodes
    first_finished = episodes if estimator == "first_finished" else None
    drawn = episodes + num_envs - 1 if first_finished else episodes  # the most episodes that can start
    tasks = protocol_tasks(family, drawn, seed)
    out = []
    for k, condition in enumerate(protocol_conditions(family)):
        evaluation = evaluate_agent(
            module,
            family,
            tasks[condition.name],
            method=method,
            episodes_per_task=1,
            agent=agent,
            num_envs=num_envs,
            seed=seed + 1000 * k,
            latent_range=latent_range,
            first_finished=first_finished,
        )
        out += [ProtocolEpisode(condition.name, condition.group, r) for r in evaluation.records]
    return out


def protocol_scores(rows: Sequence[Mapping[str, Any]]) -> list[Score]:
    """Per method: a :class:`Score` per condition (order of appearance), then the moderate, extreme and test averages.

    Args:
        rows: episodes as ``protocol.json`` stores them: mappings with ``method``, ``condition``, ``group`` and
            ``episode_return`` (other keys are ignored).
    """
    scores: list[Score] = []
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        conditions, estimates = {}, {}
        for name in dict.fromkeys(r["condition"] for r in mine):
            returns = [float(r["episode_return"]) for r in mine if r["condition"] == name]
            group = next(r["group"] for r in mine if r["condition"] == name)
            est = estimate(returns)
            conditions[name], estimates[name] = Score(method, name, group, est.mean, est.se, est.n), est
        scores += conditions.values()
        test = [name for name, s in conditions.items() if s.group != TRAIN]
        for average in (*GROUP_ORDER, TEST):
            members = test if average == TEST else [name for name in test if conditions[name].group == average]
            if not members:
                continue
            mean, stderr = mean_of_means([estimates[name] for name in members])
            scores.append(Score(method, average, average, mean, stderr, sum(conditions[m].n for m in members)))
    return scores


def summarise_protocol(episodes: Sequence[ProtocolEpisode]) -> list[Score]:
    """Per method: a :class:`Score` per condition (report order), then the moderate, extreme and test averages."""
    return protocol_scores([protocol_row(e) for e in episodes])


def protocol_row(episode: ProtocolEpisode) -> dict[str, Any]:
    """One episode as ``protocol.json`` stores it: its condition and group, then the episode record's fields."""
    return {"condition": episode.condition, "group": episode.group, **asdict(episode.record)}


def format_protocol_table(scores: Sequence[Score], descriptions: dict[str, str] | None = None) -> str:
    """A Markdown table: a row per condition and average, a ``mean ± stderr (n)`` column per method."""
    methods = list(dict.fromkeys(s.method for s in scores))
    names = list(dict.fromkeys(s.name for s in scores))
    by_key = {(s.method, s.name): s for s in scores}
    descriptions = descriptions or {}
    lines = [
        "| condition | group | tasks | " + " | ".join(methods) + " |",
        "|---|---|---|" + "---:|" * len(methods),
    ]
    for name in names:
        group = next(s.group for s in scores if s.name == name)
        cells = []
        for method in methods:
            s = by_key.get((method, name))
            cells.append("" if s is None else f"{s.mean:.1f} ± {s.stderr:.1f} ({s.n})")
        label = f"**{name} average**" if name in (*GROUP_ORDER, TEST) else name
        lines.append(f"| {label} | {group} | {descriptions.get(name, '')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def condition_descriptions(family: TaskFamily) -> dict[str, str]:
    """``condition -> "mass {0.2, 0.4}, length {1.6, 1.8}"``, plus what each average covers."""
    conditions = protocol_conditions(family)
    out = {c.name: describe_regions(family, c.regions) for c in conditions}
    for group in GROUP_ORDER:
        out[group] = "mean of " + ", ".join(c.name for c in conditions if c.group == group)
    out[TEST] = "mean of " + ", ".join(c.name for c in conditions if c.group != TRAIN)
    return out


def write_protocol(
    episodes: Sequence[ProtocolEpisode], scores: Sequence[Score], out_dir: str | Path, settings: dict[str, Any]
) -> tuple[Path, Path]:
    """Write ``protocol.json`` (settings, scores, episodes) and ``protocol.csv`` (one row per episode), atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        **settings,
        "scores": [asdict(s) for s in scores],
        "episodes": [protocol_row(e) for e in episodes],
    }
    text = json.dumps(payload, indent=2, default=float)
    json_path = atomic_write(out / "protocol.json", lambda f: f.write(text.encode()))
    names = sorted({k for e in episodes for k in e.record.task})
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    measures = measure_names([e.record for e in episodes])
    header = ["method", "condition", "group", *names, "seed", "episode_return", "length", "terminated"]
    writer.writerow([*header, *(MEASURE_PREFIX + m for m in measures)])
    for e in episodes:
        r = e.record
        row = [r.method, e.condition, e.group, *(r.task.get(n, math.nan) for n in names)]
        values = (f"{r.measures[m]:g}" if m in r.measures else "" for m in measures)
        writer.writerow([*row, r.seed, f"{r.episode_return:.4f}", r.length, int(r.terminated), *values])
    csv_path = atomic_write(out / "protocol.csv", lambda f: f.write(buffer.getvalue().encode()))
    return json_path, csv_path


def run_protocol(
    ckpts: Sequence[str],
    labels: Sequence[str] | None,
    family: TaskFamily,
    agent: AgentSettings,
    *,
    episodes: int | None,
    num_envs: int,
    seed: int,
    out: str | Path,
    log: Callable[[str], None] = print,
    latent_range_of: Callable[[str, MetaDynamicsModule], LatentRange | None] | None = None,
    estimator: str = "all",
) -> list[Score]:
    """Evaluate checkpoints under the protocol, write ``protocol.json`` / ``protocol.csv`` and log the table.

    Args:
        ckpts: checkpoints, one per method.
        labels: method names (default: each model's adaptation method).
        family: a family with reference-protocol conditions.
        agent: how the agent plans.
        episodes: episodes per condition (None: the family's, as CaDM ran them).
        num_envs: environments stepped together.
        seed: seeds the tasks, environments and planning.
        out: output directory.
        log: where the table and progress lines go.
        latent_range_of: ``(checkpoint, module) -> range`` of the model's task code on its training data, required
            when ``agent.bound_latent`` (``mbmeta evaluate`` reads it from the checkpoint's run directory).
        estimator: ``all`` or ``first_finished`` (CaDM's; see :func:`evaluate_protocol`).
    """
    from mbmeta.training.checkpoint import load_module

    if agent.bound_latent and latent_range_of is None:
        raise ValueError("agent.bound_latent needs latent_range_of (the range of each model's task code)")

    protocol_conditions(family)  # fail before loading anything if the family has none
    if estimator not in ESTIMATORS:
        raise ValueError(f"--protocol_estimator must be one of {', '.join(ESTIMATORS)}, got {estimator!r}")
    if labels is not None and len(labels) != len(ckpts):
        raise ValueError(f"--labels gives {len(labels)} names for {len(ckpts)} checkpoints")
    n = episodes or family.protocol_episodes
    each = f"the first {n} episodes to finish" if estimator == "first_finished" else f"{n} episodes"
    log(f"CaDM protocol on {family.name}: train + {len(family.conditions)} test conditions, {each} each")
    episodes_run: list[ProtocolEpisode] = []
    ranges: dict[str, dict[str, list[float]]] = {}
    for i, ckpt in enumerate(ckpts):
        module = load_module(ckpt)
        label = labels[i] if labels else module.hparams.adaptation
        log(f"{label} ({ckpt})")
        bounds = latent_range_of(ckpt, module) if agent.bound_latent else None
        if bounds is not None:
            ranges[label] = bounds.as_dict()
        episodes_run += evaluate_protocol(
            module, family, method=label, episodes=n, agent=agent, num_envs=num_envs, seed=seed, latent_range=bounds,
            estimator=estimator,
        )  # fmt: skip
    scores = summarise_protocol(episodes_run)
    settings = {"protocol": "cadm", "family": family.name, "episodes_per_condition": n, "seed": seed}
    if estimator != "all":  # absent: every episode run to its end (files written before the option read the same)
        settings["estimator"] = estimator
    settings |= {"ckpt": list(ckpts), "agent": asdict(agent), "software": software_versions()}
    if ranges:  # agent.bound_latent: each model's code range, measured on its training data
        settings["latent_range"] = ranges
    json_path, csv_path = write_protocol(episodes_run, scores, out, settings)
    log(format_protocol_table(scores, condition_descriptions(family)))
    log(f"written to {json_path} and {csv_path}")
    return scores

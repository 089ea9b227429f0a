"""Planning cost at equal closed-loop return: CaDM's exact planner against cheaper settings (issue 19, part 1).

For one trained checkpoint and a list of named planner settings, measures

- **cost**: CPU-seconds per environment step, everything included (adapt + plan + env step + bookkeeping), with
  ``--cost_envs`` environments per planner call (1: one control loop; 10: CaDM's 10 rollouts of an iteration in one
  call), over ``--cost_steps`` steps after one warm-up step; CPU time of this process (``time.process_time``) with
  one torch thread, so other processes on the machine do not inflate it;
- **return**: the closed-loop return of ``--episodes`` paired episodes on the family's *train* tasks (never the test
  tasks: the chosen setting becomes a default), all settings on the same tasks with the same environment seeds
  (the episodes run in groups of ``--group`` environments per planner call, the same groups for every setting, so
  the pairing holds), and the paired difference to the reference setting with its 95 % interval.

Each setting's result is written to ``OUT/<setting>.json`` as soon as it is measured and skipped when present;
within a setting, its cost and each finished group of ``--group`` episodes are kept under ``OUT/partial/``. So a
killed run continues where it stopped (losing at most one group) when the same command is run again;
``OUT/table.md`` is rewritten after every setting.

    python benchmarks/planning_cost.py --ckpt experiments/planning_cost/runs/pendulum-context/model.ckpt \\
        --out experiments/planning_cost/results/pendulum --settings cadm_exact cadm_bf16 icem_p5_bf16

Return and cost are measured separately on purpose: batching environments changes the cost per step but not what
the planner computes for each environment (only which random numbers it draws), so one batched run measures the
return of a setting and short runs measure its cost at each batch size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")

CADM_CEM = {"class_path": "cem", "init_args": {"population": 200, "elites": 50, "iterations": 5, "alpha": 0.1}}
CADM_RS = {"class_path": "random_shooting", "init_args": {"population": 200}}
CADM = {"planner": CADM_CEM, "horizon": 30, "propagation": "tsinf", "particles": 20, "precision": "fp32"}
TS1_BF16 = {"propagation": "ts1", "particles": 1, "precision": "bf16"}  # one sampled particle, the model in bf16


def _icem(population: int, elites: int, iterations: int = 4, beta: float = 2.0) -> dict[str, Any]:
    options = {"population": population, "elites": elites, "iterations": iterations, "alpha": 0.1}
    return {"class_path": "icem", "init_args": {**options, "beta": beta, "keep_elites": 0.3, "decay": 1.25}}


SETTINGS: dict[str, dict[str, Any]] = {
    "cadm_exact": CADM,  # CaDM: CEM 200 x 5 iterations, 50 elites, alpha 0.1, H = 30, TS-inf with 20 particles
    "cadm_bf16": {**CADM, "precision": "bf16"},
    "cadm_p5_bf16": {**CADM, "particles": 5, "precision": "bf16"},
    "icem_p20_bf16": {**CADM, "planner": _icem(200, 20), "precision": "bf16"},
    "icem_p5_bf16": {**CADM, "planner": _icem(200, 20), "particles": 5, "precision": "bf16"},
    "icem_small_p5_bf16": {**CADM, "planner": _icem(100, 10, 3), "particles": 5, "precision": "bf16"},
    # Near-white noise (beta 0.25) for gaits that need fast action changes: added in session 13 after both beta = 2
    # settings measured stayed near 30 on cadm_halfcheetah's train tasks, where CaDM's CEM reached ~320
    "icem_small_beta025_p5_bf16": {
        **CADM,
        "planner": _icem(100, 10, 3, beta=0.25),
        "particles": 5,
        "precision": "bf16",
    },
    # CaDM's CEM with one trajectory-sampled particle per candidate (TS-1: one member per row, 20x fewer rows than 20
    # particles): added in session 13, when no iCEM setting >= 10x cheaper came near CaDM's CEM on cadm_halfcheetah
    "cem_ts1_bf16": {**CADM, **TS1_BF16},
    # CartPole: CaDM planned with random shooting (200 sequences), its CEM could not plan the discrete action; the
    # reference there (--reference cadm_rs_exact) and the default's propagation and precision on it
    "cadm_rs_exact": {**CADM, "planner": CADM_RS},
    "rs_ts1_bf16": {**CADM, "planner": CADM_RS, **TS1_BF16},
    "icem_small_expectation_bf16": {
        **CADM,
        "planner": _icem(100, 10, 3),
        "propagation": "expectation",
        "particles": 1,
        "precision": "bf16",
    },
}
"""Named settings: overrides of the run's agent settings (context length and reward stay the run's)."""


def measure_cost(module, family, agent, *, envs: int, steps: int, seed: int) -> float:
    """CPU-seconds per environment step with ``envs`` environments per planner call (after one warm-up step)."""
    from mbmeta.control.collection import collect_episodes
    from mbmeta.control.factory import make_agent

    tasks = family.sample(np.random.default_rng([seed, 1]), envs, "train")
    mpc = make_agent(module.dynamics, family, agent, seed=seed)
    env_kwargs = {"max_episode_steps": 1}  # warm-up: allocations, first calls
    collect_episodes(mpc, envs, family=family, tasks=tasks, num_envs=envs, seed=seed, env_kwargs=env_kwargs)
    start = time.process_time()
    collect_episodes(
        mpc, envs, family=family, tasks=tasks, num_envs=envs, seed=seed, env_kwargs={"max_episode_steps": steps}
    )
    return (time.process_time() - start) / (steps * envs)


def measure_returns(
    module, family, agent, *, episodes: int, max_steps: int | None, seed: int, group: int, partial: Path
) -> list[float]:
    """Returns of ``episodes`` episodes on train tasks (drawn with ``seed``), in task order.

    The episodes run in groups of ``group`` environments per planner call; each finished group's returns are saved
    to ``partial`` at once, so a killed run loses at most the group in progress (an exact-CaDM group of 5 pendulum
    episodes is ~0.5 CPU-h). Every setting runs the same groups on the same tasks and environment seeds (a group's
    episode ``j`` has ``evaluate_agent``'s seeds: ``seed`` and its ``j``-th environment), so returns pair by index.
    """
    from mbmeta.evaluation.episodes import evaluate_agent

    tasks = family.sample(np.random.default_rng([seed, 0]), episodes, "train")
    done: list[list[float]] = json.loads(partial.read_text())["groups"] if partial.is_file() else []
    for start in range(len(done) * group, episodes, group):
        evaluation = evaluate_agent(
            module,
            family,
            tasks[start : start + group],
            agent=agent,
            num_envs=group,
            seed=seed,
            env_kwargs={"max_episode_steps": max_steps} if max_steps else None,
        )
        done.append([r.episode_return for r in sorted(evaluation.records, key=lambda r: r.task_id)])
        _write_json(partial, {"groups": done})
        print(f"  episodes {start + 1}-{start + len(done[-1])} of {episodes}: {np.mean(done[-1]):.1f}", flush=True)
    return [value for values in done for value in values]


TARGET_SPEEDUP = 10.0  # issue 19: >= 10x fewer CPU-seconds per environment step than the exact planner


def passes(returns: list[float], reference: list[float], speedup: float) -> bool:
    """Issue 19's criterion: ``TARGET_SPEEDUP``× cheaper and a return whose 95 % interval overlaps or exceeds the
    reference's (the setting's upper end at or above the reference's lower end)."""
    from mbmeta.evaluation.statistics import estimate

    mine, ref = estimate(returns), estimate(reference)
    return speedup >= TARGET_SPEEDUP and mine.has_interval and ref.has_interval and mine.high >= ref.low


def verdict_per_batch(result: dict[str, Any], reference: dict[str, Any]) -> dict[str, tuple[float, bool]]:
    """Per batch size measured for both: ``(cost relative to the reference, whether it `passes`)``."""
    ref_costs = reference["cpu_s_per_step"]
    return {
        b: (c / ref_costs[b], passes(result["returns"], reference["returns"], ref_costs[b] / c))
        for b, c in result["cpu_s_per_step"].items()
        if b in ref_costs
    }


def passing_cost(result: dict[str, Any], reference: dict[str, Any]) -> float | None:
    """The worst relative cost over batch sizes if the setting passes at every one of them, else None."""
    verdicts = verdict_per_batch(result, reference)
    if not verdicts or not all(ok for _, ok in verdicts.values()):
        return None
    return max(cost for cost, _ in verdicts.values())


def write_table(out: Path, reference: str) -> str:
    """``table.md`` from every ``OUT/*.json``: cost, speed-up, return, paired difference, :func:`passing_cost`."""
    from mbmeta.evaluation.statistics import estimate, verdict

    results = {p.stem: json.loads(p.read_text()) for p in sorted(out.glob("*.json"))}
    ref = results.get(reference)
    lines = [
        f"| setting | CPU ms per env step ({', '.join(f'{b} env' for b in _batches(results))}) | speed-up | "
        f"return (mean ± s.e., 95 % interval, n) | minus {reference} (95 % interval) | "
        f"≥ {TARGET_SPEEDUP:g}× cheaper at a return overlapping {reference}'s |",
        "|---|---|---|---|---|---|",
    ]
    passing: list[tuple[float, str]] = []
    for name, r in results.items():
        ret = estimate(r["returns"])
        costs = ", ".join(f"{1000 * c:.0f}" for c in r["cpu_s_per_step"].values())
        speedup = ""
        if ref is not None:
            speedup = ", ".join(
                f"{ref['cpu_s_per_step'][b] / c:.1f}×"
                for b, c in r["cpu_s_per_step"].items()
                if b in ref["cpu_s_per_step"]
            )
        diff = "—"
        if ref is not None and name != reference and len(ref["returns"]) == len(r["returns"]):
            d = estimate(np.subtract(r["returns"], ref["returns"]).tolist())
            diff = f"{d.mean:+.1f} [{d.low:+.1f}, {d.high:+.1f}] ({verdict(d)})"
        interval = f"[{ret.low:.1f}, {ret.high:.1f}]"
        verdicts = "—"
        if ref is not None and name != reference:
            per_batch = verdict_per_batch(r, ref).items()
            verdicts = ", ".join(f"{b} env: {'yes' if ok else 'no'}" for b, (_, ok) in per_batch)
            cost = passing_cost(r, ref)
            if cost is not None:
                passing.append((cost, name))
        cells = f"{ret.mean:.1f} ± {ret.se:.1f}, {interval}, {ret.n} | {diff} | {verdicts}"
        lines.append(f"| {name} | {costs} | {speedup} | {cells} |")
    if ref is not None:
        cheapest = min(passing)[1] if passing else None
        lines += ["", f"Cheapest setting that passes at every batch size: {cheapest or 'none yet'}."]
    table = "\n".join(lines) + "\n"
    (out / "table.md").write_text(table)
    return table


def _costs(module, family, agent, args: argparse.Namespace) -> dict[str, float]:
    """CPU-seconds per environment step for each of ``args.cost_envs`` environments per planner call."""
    return {
        str(b): measure_cost(module, family, agent, envs=b, steps=args.cost_steps, seed=args.seed)
        for b in args.cost_envs
    }


def _code_version() -> str:
    """The git commit the cost was measured on (``+dirty`` with uncommitted changes), or ``unknown``."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "mbmeta"], cwd=root, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def _write_json(path: Path, result: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(path)


def _batches(results: dict[str, Any]) -> list[str]:
    return sorted({b for r in results.values() for b in r["cpu_s_per_step"]}, key=int)


def main(argv: list[str] | None = None) -> int:
    """Measure every requested setting not yet measured; print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", required=True, help="trained checkpoint of a mbmeta train run")
    parser.add_argument("--out", required=True, help="directory of the per-setting JSON files and table.md")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--reference", default="cadm_exact", help="the setting the others are compared with")
    parser.add_argument("--episodes", type=int, default=20, help="paired episodes per setting (train tasks)")
    parser.add_argument("--max_steps", type=int, default=None, help="truncate episodes (default: the family's)")
    parser.add_argument("--cost_envs", type=int, nargs="+", default=[1, 10], help="environments per planner call")
    parser.add_argument("--cost_steps", type=int, default=20, help="timed steps per cost measurement")
    parser.add_argument(
        "--group", type=int, default=5, help="episodes per planner call and per saved unit of the return measurement"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--cost_only",
        action="store_true",
        help="re-measure only the cost of settings measured already, on the current code (returns are kept)",
    )
    args = parser.parse_args(argv)

    import torch

    from mbmeta.commands.run_config import run_agent_settings
    from mbmeta.control.settings import AgentSettings
    from mbmeta.envs import get_family
    from mbmeta.runs.run_dir import RunDirectory
    from mbmeta.training.checkpoint import load_module

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    found = run_agent_settings(args.ckpt)
    if found is None:
        raise SystemExit(f"{args.ckpt}: no run config.json beside it (the run's agent settings are needed)")
    run_agent = found[1]
    family = get_family(RunDirectory(Path(args.ckpt).parent).read_config()["loop"]["family"])
    module = load_module(args.ckpt)
    for name in args.settings:
        path = out / f"{name}.json"
        agent = AgentSettings.from_config({**run_agent, **SETTINGS[name]})
        if args.cost_only:
            if path.is_file():
                result = json.loads(path.read_text())
                result["cpu_s_per_step"] = _costs(module, family, agent, args)
                result["cost_code"] = _code_version()
                _write_json(path, result)
                print(f"{name}: cost re-measured {result['cpu_s_per_step']}", flush=True)
            continue
        if path.is_file():
            print(f"{name}: measured already ({path})", flush=True)
            continue
        started = time.perf_counter()
        partial_dir = out / "partial"  # unfinished settings: cost and finished groups (outside table.md's glob)
        partial_dir.mkdir(exist_ok=True)
        cost_path = partial_dir / f"{name}.cost.json"
        if cost_path.is_file():
            cost = json.loads(cost_path.read_text())
        else:
            cost = _costs(module, family, agent, args)
            _write_json(cost_path, cost)
        returns = measure_returns(
            module, family, agent, episodes=args.episodes, max_steps=args.max_steps, seed=args.seed,
            group=args.group, partial=partial_dir / f"{name}.returns.json",
        )  # fmt: skip
        result = {
            "setting": name,
            "agent": agent.as_config(),
            "family": family.name,
            "ckpt": str(args.ckpt),
            "episodes": args.episodes,
            "group": args.group,
            "max_steps": args.max_steps,
            "split": "train",
            "seed": args.seed,
            "cpu_s_per_step": cost,
            "returns": returns,
            "wall_s": time.perf_counter() - started,
            "cost_code": _code_version(),
        }
        _write_json(path, result)
        for unfinished in (cost_path, partial_dir / f"{name}.returns.json"):
            unfinished.unlink(missing_ok=True)
        print(f"{name}: {cost} CPU s per env step; return {np.mean(returns):.1f}", flush=True)
        print(write_table(out, args.reference), flush=True)
    print(write_table(out, args.reference))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Planning cost at equal closed-loop return: CaDM's exact planner against cheaper settings (issue 19, part 1).

For one trained checkpoint and a list of named planner settings, measures

- **cost**: CPU-seconds per environment step, everything included (adapt + plan + env step + bookkeeping), with
  ``--cost_envs`` environments per planner call (1: one control loop; 10: CaDM's 10 rollouts of an iteration in one
  call), over ``--cost_steps`` steps after one warm-up step; CPU time of this process (``time.process_time``) with
  one torch thread, so other processes on the machine do not inflate it;
- **return**: the closed-loop return of ``--episodes`` paired episodes on the family's *train* tasks (never the test
  tasks: the chosen setting becomes a default), all settings on the same tasks with the same environment seeds
  (every episode has its own environment, seeded ``seed + i``, so the pairing holds for every setting), and the
  paired difference to the reference setting with its 95 % interval.

Each setting's result is written to ``OUT/<setting>.json`` as soon as it is measured and skipped when present, so
a killed run continues where it stopped when the same command is run again; ``OUT/table.md`` is rewritten after
every setting.

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
CADM = {"planner": CADM_CEM, "horizon": 30, "propagation": "tsinf", "particles": 20, "precision": "fp32"}


def _icem(population: int, elites: int, iterations: int = 4) -> dict[str, Any]:
    options = {"population": population, "elites": elites, "iterations": iterations, "alpha": 0.1}
    return {"class_path": "icem", "init_args": {**options, "beta": 2.0, "keep_elites": 0.3, "decay": 1.25}}


SETTINGS: dict[str, dict[str, Any]] = {
    "cadm_exact": CADM,  # CaDM: CEM 200 x 5 iterations, 50 elites, alpha 0.1, H = 30, TS-inf with 20 particles
    "cadm_bf16": {**CADM, "precision": "bf16"},
    "cadm_p5_bf16": {**CADM, "particles": 5, "precision": "bf16"},
    "icem_p20_bf16": {**CADM, "planner": _icem(200, 20), "precision": "bf16"},
    "icem_p5_bf16": {**CADM, "planner": _icem(200, 20), "particles": 5, "precision": "bf16"},
    "icem_small_p5_bf16": {**CADM, "planner": _icem(100, 10, 3), "particles": 5, "precision": "bf16"},
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


def measure_returns(module, family, agent, *, episodes: int, max_steps: int | None, seed: int) -> list[float]:
    """Returns of ``episodes`` episodes on train tasks, one environment each (seeded ``seed + i``), in task order."""
    from mbmeta.evaluation.episodes import evaluate_agent

    tasks = family.sample(np.random.default_rng([seed, 0]), episodes, "train")
    evaluation = evaluate_agent(
        module,
        family,
        tasks,
        agent=agent,
        num_envs=episodes,
        seed=seed,
        env_kwargs={"max_episode_steps": max_steps} if max_steps else None,
    )
    return [r.episode_return for r in sorted(evaluation.records, key=lambda r: r.task_id)]


def write_table(out: Path, reference: str) -> str:
    """``table.md`` from every ``OUT/*.json``: cost, speed-up, return ± s.e. and the paired difference."""
    from mbmeta.evaluation.statistics import estimate, verdict

    results = {p.stem: json.loads(p.read_text()) for p in sorted(out.glob("*.json"))}
    ref = results.get(reference)
    lines = [
        f"| setting | CPU ms per env step ({', '.join(f'{b} env' for b in _batches(results))}) | speed-up | "
        f"return (mean ± s.e., 95 % interval, n) | minus {reference} (95 % interval) |",
        "|---|---|---|---|---|",
    ]
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
        lines.append(f"| {name} | {costs} | {speedup} | {ret.mean:.1f} ± {ret.se:.1f}, {interval}, {ret.n} | {diff} |")
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
        cost = _costs(module, family, agent, args)
        returns = measure_returns(
            module, family, agent, episodes=args.episodes, max_steps=args.max_steps, seed=args.seed
        )
        result = {
            "setting": name,
            "agent": agent.as_config(),
            "family": family.name,
            "ckpt": str(args.ckpt),
            "episodes": args.episodes,
            "max_steps": args.max_steps,
            "split": "train",
            "seed": args.seed,
            "cpu_s_per_step": cost,
            "returns": returns,
            "wall_s": time.perf_counter() - started,
            "cost_code": _code_version(),
        }
        _write_json(path, result)
        print(f"{name}: {cost} CPU s per env step; return {np.mean(returns):.1f}", flush=True)
        print(write_table(out, args.reference), flush=True)
    print(write_table(out, args.reference))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Issue 20's sample-efficiency target: environment steps of the learned agents against PPO's, with intervals.

Reads this experiment's merged learning curve (``results/curve.json``, from ``mbmeta sweep --merge-only``) and the
finished PPO multitask runs of ``experiments/juggler_baselines`` (``runs/ppo-multitask-seed*/`` with a
``results.json``; SAC's ``runs/sac-multitask-seed*/`` as reference rows without a target, a seed whose fine grid
finished before its 200k run read from the fine grid alone), and writes
``results/sample_efficiency.md``. Two readings, both on the same 16 test tasks:

1. **Design** (fixed before any run): environment steps at which the mean test balance time first reaches 225 of
   250 steps (PPO: ``steps_to_target_length``; ours: ``curve.json``'s ``to_target``).
2. **The issue's wording**: steps to reach *PPO's final test balance time* (the mean over PPO's seeds of their final
   evaluations), read off the same learning curves (PPO every 10k steps, every 2k in its first 100k where the
   fine-grid runs exist; ours at every kept checkpoint).

Per reading and method: per-seed steps, mean, s.e., 95 % t-interval and n; the ratio of the means PPO / ours. PPO is
evaluated on a grid (10k, or 2k in the fine-grid runs), so its steps to a target are known only to lie after its last
curve point below it; ours are the first kept checkpoint at the target (an upper bound). The target is tested
conservatively, as a difference ``PPO's lower bound − 10 × ours`` with its 95 % Welch interval (independent seeds):
"≥ 10× fewer" is established only when that interval lies above zero (both need two or more seeds, all of which
reached the target).

Usage (from the repository root): ``python experiments/juggler_servo_small/sample_efficiency.py``; for another
experiment with a learning curve on the same tasks, ``--curve experiments/<name>/results/curve.json --out
experiments/<name>/results/sample_efficiency.md``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

from mbmeta.evaluation.statistics import Estimate, estimate, t_quantile

HERE = Path(__file__).resolve().parent
BASELINES = HERE.parent / "juggler_baselines" / "runs"
TARGET_RATIO = 10.0


def _curve(run: Path) -> list[tuple[int, float]]:
    with open(run / "learning_curve.csv", newline="") as f:
        return [(int(float(r["env_steps"])), float(r["length_mean"])) for r in csv.DictReader(f)]


def ppo_runs(root: Path) -> dict[int, dict]:
    """Finished PPO multitask runs by seed (``baseline_runs`` of ``"ppo"``)."""
    return baseline_runs(root, "ppo")


def baseline_runs(root: Path, algo: str, *, fine_alone: bool = False) -> dict[int, dict]:
    """Finished ``<algo>-multitask-seed<s>`` runs by seed: ``{"steps_to_225", "curve", "fine", "pending"}``.

    ``curve``: ``[(steps, mean test balance time)]``.

    Where a finished fine-grid run of the same seed exists (``<algo>-fine-seed<s>``: its first steps evaluated more
    often, e.g. PPO's first 100k every 2k), its curve points are added, after checking that both runs agree wherever
    both evaluated (the same training run); ``steps_to_225`` stays the long run's own reading. With ``fine_alone``,
    a seed whose fine-grid run finished before its long run is read from the fine run alone (``pending``: no
    agreement check yet, ``steps_to_225`` None; its curve ends where the fine grid does, so it says nothing of the
    final policy).

    Raises:
        ValueError: a fine-grid run disagrees with its long run at a shared point.
    """
    runs = {}
    if fine_alone:
        for fine_run in sorted(root.glob(f"{algo}-fine-seed*")):
            long_run = root / fine_run.name.replace("-fine-", "-multitask-")
            if (fine_run / "results.json").is_file() and not (long_run / "results.json").is_file():
                seed = int(fine_run.name.rsplit("seed", 1)[1])
                runs[seed] = {"steps_to_225": None, "curve": _curve(fine_run), "fine": True, "pending": True}
    for run in sorted(root.glob(f"{algo}-multitask-seed*")):
        results = run / "results.json"
        if not results.is_file():
            continue  # not finished
        seed = int(run.name.rsplit("seed", 1)[1])
        curve, fine = _curve(run), False
        fine_run = root / f"{algo}-fine-seed{seed}"
        if (fine_run / "results.json").is_file():
            coarse, extra = dict(curve), dict(_curve(fine_run))
            shared = sorted(set(coarse) & set(extra))
            bad = [s for s in shared if abs(coarse[s] - extra[s]) > 1e-6]
            if bad or not shared:
                raise ValueError(f"{fine_run}: its curve differs from {run}'s at steps {bad or 'none shared'}")
            curve, fine = sorted({**extra, **coarse}.items()), True
        runs[seed] = {
            "steps_to_225": json.loads(results.read_text()).get("steps_to_target_length"),
            "curve": curve,
            "fine": fine,
            "pending": False,
        }
    return dict(sorted(runs.items()))


def first_reaching(points: list[tuple[float, float]], target: float) -> float | None:
    """The steps of the first ``(steps, value)`` point (in order of steps) with ``value >= target``, or None."""
    return next((steps for steps, value in sorted(points) if value >= target), None)


def last_below(points: list[tuple[float, float]], target: float) -> float | None:
    """The steps of the last point before the first one at or above ``target`` (0 if that is the first point).

    With evaluations on a grid, an agent that first shows the target at point ``k`` reached it somewhere after
    point ``k - 1``: this is the lower bound of its steps to the target.
    """
    ordered = sorted(points)
    first = next((i for i, (_, value) in enumerate(ordered) if value >= target), None)
    if first is None:
        return None
    return ordered[first - 1][0] if first > 0 else 0.0


def our_curves(curve: dict) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """Per method and training seed, the ``(transitions, mean test length)`` of every kept checkpoint."""
    out: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for point in curve["points"]:
        per_seed = point["values"]["overall"]["per_seed"]
        for seed, value in per_seed.items():
            steps = point["transitions_per_seed"][seed]
            out.setdefault(point["method"], {}).setdefault(seed, []).append((float(steps), float(value)))
    return out


def welch_difference(a: Estimate, b: Estimate, factor: float) -> tuple[float, float, float]:
    """``a − factor·b`` of two independent means: the difference and its 95 % Welch interval ``(mean, low, high)``.

    NaN ends when either has fewer than two values.
    """
    mean = a.mean - factor * b.mean
    if not (a.has_interval and b.has_interval):
        return mean, math.nan, math.nan
    va, vb = a.se**2, (factor * b.se) ** 2
    if va + vb == 0:
        return mean, mean, mean
    df = (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))
    half = t_quantile(0.5 + a.confidence / 2, df) * math.sqrt(va + vb)
    return mean, mean - half, mean + half


def _fmt(x: float, digits: int = 0) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:,.{digits}f}"


def _row(name: str, per_seed: dict[str, float | None], ppo: Estimate | None, ppo_low: Estimate | None = None) -> str:
    reached = {s: v for s, v in per_seed.items() if v is not None}
    est = estimate(list(reached.values())) if len(reached) == len(per_seed) and reached else None
    seeds = ", ".join(f"{s}: {_fmt(v) if v is not None else '—'}" for s, v in sorted(per_seed.items()))
    cells = [f"`{name}`", f"{len(reached)} of {len(per_seed)}", seeds]
    if est is None:
        return "| " + " | ".join(cells + ["—"] * 5) + " |"
    interval = f"[{_fmt(est.low)}, {_fmt(est.high)}]" if est.has_interval else "—"
    cells += [_fmt(est.mean), _fmt(est.se), interval]
    if ppo is None:
        return "| " + " | ".join(cells + ["—", "—"]) + " |"
    ratio = f"{ppo.mean / est.mean:.1f}× ({ppo_low.mean / est.mean:.1f}×)" if ppo_low else f"{ppo.mean / est.mean:.1f}×"
    diff, low, high = welch_difference(ppo_low or ppo, est, TARGET_RATIO)
    if math.isfinite(low):
        established = "established" if low > 0 else "not established"
        # Refuted only if even PPO's first point at the target (its upper bound) is below 10 x ours
        _, _, high_upper = welch_difference(ppo, est, TARGET_RATIO)
        if high_upper < 0:
            established = "below: fewer than 10× ours even at PPO's first point at the target"
        verdict = f"{_fmt(diff)} [{_fmt(low)}, {_fmt(high)}]: {established}"
    else:
        verdict = f"{_fmt(diff)}: not established (needs ≥ 2 seeds of both)"
    return "| " + " | ".join(cells + [ratio, verdict]) + " |"


def _all_reached(per_seed: dict[str, float | None]) -> Estimate | None:
    values = [v for v in per_seed.values() if v is not None]
    return estimate(values) if per_seed and len(values) == len(per_seed) else None


def _seeds(runs: dict[int, dict], flag: str | None = None) -> str:
    """``"0, 1, 2"``: the seeds of ``runs`` (those whose ``flag`` is set, if given), or ``"none"``."""
    return ", ".join(str(s) for s, run in sorted(runs.items()) if flag is None or run[flag]) or "none"


def report(curve: dict, ppo: dict[int, dict], sac: dict[int, dict] | None = None) -> str:
    """The markdown page of both readings; SAC's runs (if any) as reference rows, without a target."""
    sac = sac or {}
    ours = our_curves(curve)
    sac_source = ""
    if sac:
        sac_source = (
            f"; SAC multitask runs for reference, without a target (seeds {_seeds(sac)}; fine grid of the first 20k "
            f"steps, every 1k, for seeds {_seeds(sac, 'fine')}"
        )
        if any(run["pending"] for run in sac.values()):
            sac_source += (
                "; read from the fine grid alone, its 200k run not finished (no agreement check yet), for seeds "
                + _seeds(sac, "pending")
            )
        sac_source += ")"
    lines = [
        f"# {curve.get('experiment', 'juggler_servo_small')}: environment steps to PPO's balance time",
        "",
        "Written by `python experiments/juggler_servo_small/sample_efficiency.py` from the experiment's "
        "results/curve.json and the finished PPO multitask runs of experiments/juggler_baselines (seeds "
        f"{_seeds(ppo)}; fine grid of the first 100k steps for seeds {_seeds(ppo, 'fine')})"
        + sac_source
        + ". Steps are environment steps of training data (ours: the transitions a kept checkpoint was fitted on, "
        "random data included; PPO: its training steps at an evaluation every 10k, every 2k in the first 100k where "
        "the fine grid ran). Mean test balance time over the "
        "16 balanced test tasks, one episode each. PPO is evaluated on a grid, so it reached a target somewhere "
        "after its last curve point below it: that point is PPO's lower bound (the row 'PPO, lower bound'). Ratio: "
        "PPO's mean over ours, at PPO's first point at the target and (in brackets) at its lower bound. The target "
        "(≥ 10× fewer steps than PPO) is tested conservatively, with PPO's lower bound: established when "
        "PPO − 10 × ours has a 95 % Welch interval above zero, and refuted ('below') only when the interval is below "
        "zero even at PPO's first point at the target.",
        "",
    ]
    header = [
        "| agent | reached | per seed | mean | s.e. | 95 % interval | ratio PPO / ours "
        "| PPO (lower bound) − 10 × ours [95 %] |",
        "|---|---:|---|---:|---:|---|---:|---|",
    ]
    ppo_final = estimate([run["curve"][-1][1] for run in ppo.values()]) if ppo else None
    readings = [("a mean test balance time of 225 (the design's reading)", 225.0, True)]
    if ppo_final is not None:
        readings.append((f"PPO's final test balance time, {ppo_final.mean:.1f} (the issue's wording)", None, False))
    for title, target, design in readings:
        target = ppo_final.mean if target is None else target
        ppo_steps = {str(s): first_reaching(run["curve"], target) for s, run in ppo.items()}
        ppo_lower = {str(s): last_below(run["curve"], target) for s, run in ppo.items()}
        if design:  # the same reading as each run's own steps_to_target_length, where no finer grid was added
            assert all(ppo_steps[str(s)] == run["steps_to_225"] for s, run in ppo.items() if not run["fine"])
        ppo_est, ppo_low = (_all_reached(steps) for steps in (ppo_steps, ppo_lower))
        lines += [f"## Steps to {title}", ""] + header
        lines.append(_row("PPO", ppo_steps, None))
        lines.append(_row("PPO, lower bound", ppo_lower, None))
        if sac:
            lines.append(_row("SAC", {str(s): first_reaching(run["curve"], target) for s, run in sac.items()}, None))
            lines.append(
                _row("SAC, lower bound", {str(s): last_below(run["curve"], target) for s, run in sac.items()}, None)
            )
        for method, seeds in ours.items():
            per_seed = {s: first_reaching(points, target) for s, points in seeds.items()}
            lines.append(_row(method, per_seed, ppo_est, ppo_low))
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Write results/sample_efficiency.md (and print it)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--curve", type=Path, default=HERE / "results" / "curve.json")
    p.add_argument("--baselines", type=Path, default=BASELINES)
    p.add_argument("--out", type=Path, default=HERE / "results" / "sample_efficiency.md")
    args = p.parse_args(argv)
    if not args.curve.is_file():
        raise SystemExit(f"sample_efficiency: {args.curve} not found; run `mbmeta sweep {HERE} --merge-only` first")
    baselines = baseline_runs(args.baselines, "ppo"), baseline_runs(args.baselines, "sac", fine_alone=True)
    text = report(json.loads(args.curve.read_text()), *baselines)
    args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()

"""``mbmeta collect``: record episodes of a policy on a family's tasks into a buffer that ``mbmeta fit`` reads.

    mbmeta collect --family pendulum --episodes 40 --out data/pendulum.npz                  # random actions
    mbmeta collect --family juggler_balance_servo --scale 0.1 --episodes 40 --out data/gentle.npz  # gentle random
    mbmeta collect --family juggler_balance --policy scripted --noise 0.3 --episodes 20 --out data/juggler.npz
    mbmeta collect --family pendulum --policy my_robot.control:policy --episodes 20 --out data/mine.npz
    mbmeta collect --ckpt runs/fit/x/checkpoints/last.ckpt --episodes 20 --out data/pendulum.npz --append

Every episode runs on its own task, sampled from the family's ``--split`` (each environment reports its task, which
the buffer stores beside the episode). The policy is ``random`` (uniform actions, the default), ``scripted`` (the
family's scripted controller with Gaussian action noise), ``module:name`` (your own: a
:class:`~mbmeta.control.policy.Policy` or a function ``actions [B, A] = f(obs [B, O])`` on float32 NumPy arrays), or
the MPC agent of a saved checkpoint (``--ckpt``, planning as its run did or with a light planner, ``--agent.*``).
The buffer file (format: ``docs/data_format.md``) is written atomically; an existing file is never overwritten
(``--append`` adds to it after checking that it holds the same family, task parameters and sizes).
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path
from typing import Any

from jsonargparse import ActionConfigFile

from mbmeta.commands import configure_threads, one_line_errors
from mbmeta.commands.agent_arguments import CommandParser, agent_settings
from mbmeta.commands.run_config import parse_with_run_defaults

POLICIES = ("random", "scripted")


def build_parser() -> CommandParser:
    """Arguments of ``mbmeta collect``."""
    parser = CommandParser(
        prog="mbmeta collect",
        description="Record episodes of a policy (random, the family's scripted controller, your own, or a saved "
        "agent checkpoint) on a family's tasks into an episode buffer (.npz) for `mbmeta fit`.",
        default_meta=False,
    )
    parser.add_argument("--config", action=ActionConfigFile, help="YAML config file(s)")
    parser.add_argument("--family", type=str | None, default=None, help="task family (default: the checkpoint's)")
    parser.add_argument("--episodes", type=int, default=20, help="episodes to record")
    parser.add_argument("--out", type=str, required=True, help="the buffer file to write (.npz)")
    parser.add_argument(
        "--policy",
        type=str | None,
        default=None,
        help="random (default), scripted (the family's controller with --noise), or module:name of your own "
        "Policy or function actions [B, A] = f(obs [B, O]); not with --ckpt",
    )
    parser.add_argument("--ckpt", type=str | None, default=None, help="collect with the MPC agent of this checkpoint")
    parser.add_argument("--noise", type=float, default=0.5, help="scripted: largest action-noise std (half-range)")
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="random: actions uniform within this fraction of each half-range about the centre (as loop.initial_scale)",
    )
    parser.add_argument(
        "--split",
        type=str,
        default="train",
        help="the split tasks are sampled from: train, test or validation (families that define one)",
    )
    parser.add_argument("--num_envs", type=int, default=4, help="environments stepped together")
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seeds tasks, environments and the policy; with --append, plus the episodes already stored (so the new "
        "episodes differ from the stored ones)",
    )
    parser.add_argument(
        "--env_kwargs",
        type=dict[str, Any],
        default={},
        help="extra gymnasium.make arguments, e.g. '{\"max_episode_steps\": 100}'",
    )
    parser.add_argument("--append", action="store_true", help="add to an existing --out file instead of refusing")
    parser.add_agent_arguments()
    return parser


@one_line_errors("collect")
def run(argv: list[str]) -> int:
    """Parse ``argv``, collect and save the buffer; returns the exit code."""
    from mbmeta.control.collection import collect_episodes
    from mbmeta.envs import get_family
    from mbmeta.evaluation.progress import episode_progress

    parser = build_parser()
    cfg = parser.parse_args(argv)
    source = None
    if cfg.ckpt is not None:
        cfg, source = parse_with_run_defaults(parser, argv, cfg.ckpt)
    configure_threads()
    _check(cfg)
    out = Path(cfg.out)
    existing = _existing_buffer(out, cfg.append)
    family = get_family(cfg.family or _family_of(cfg, existing))
    seed = cfg.seed + (existing.num_episodes if existing is not None else 0)
    policy, pass_task, what = _policy(cfg, family, source, seed)
    print(f"collecting {cfg.episodes} episodes with {what} on {cfg.split} tasks of {family.name}", flush=True)
    start = time.perf_counter()
    with episode_progress(f"{what} episodes", cfg.episodes) as on_episode:
        collection = collect_episodes(
            policy, cfg.episodes, family=family, split=cfg.split, num_envs=min(cfg.num_envs, cfg.episodes),
            seed=seed, env_kwargs=dict(cfg.env_kwargs), pass_task=pass_task, on_episode=on_episode,
        )  # fmt: skip
    buffer = collection.buffer
    if existing is not None:
        _check_compatible(existing, buffer, out)
        existing.extend(buffer)
        buffer = existing
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer.save(out)
    returns = [e.episode_return for e in collection.episodes]
    print(
        f"{len(returns)} episodes ({collection.buffer.num_transitions} transitions, mean return "
        f"{sum(returns) / len(returns):.1f}) in {time.perf_counter() - start:.0f} s; {out} holds "
        f"{buffer.num_episodes} episodes, {buffer.num_transitions} transitions",
        flush=True,
    )
    print(f"fit a model on it: mbmeta fit --data.buffer_path {out} (see `mbmeta fit --help`)", flush=True)
    return 0


def _check(cfg: Any) -> None:
    """Bad values fail before any environment is built."""
    if cfg.episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {cfg.episodes}")
    if cfg.num_envs < 1:
        raise ValueError(f"--num_envs must be >= 1, got {cfg.num_envs}")
    if cfg.split not in ("train", "test", "validation"):
        raise ValueError(f"--split must be train, test or validation, got {cfg.split!r}")
    if cfg.ckpt is not None and cfg.policy is not None:
        raise ValueError("give either --policy or --ckpt (the checkpoint's MPC agent is the policy)")
    if cfg.ckpt is not None and not Path(cfg.ckpt).is_file():
        raise FileNotFoundError(f"checkpoint {cfg.ckpt!r} does not exist")
    if cfg.noise < 0:
        raise ValueError(f"--noise must be >= 0, got {cfg.noise}")
    if not 0 < cfg.scale <= 1:
        raise ValueError(f"--scale must be in (0, 1], got {cfg.scale}")


def _existing_buffer(out: Path, append: bool) -> Any:
    """The buffer already at ``out`` when appending (None if there is none); refuses to overwrite one otherwise."""
    from mbmeta.data.buffer import EpisodeBuffer

    if out.exists() and not append:
        raise FileExistsError(f"{out} exists; pass --append to add to it, or choose another --out (nothing written)")
    return EpisodeBuffer.load(out) if out.exists() else None


def _family_of(cfg: Any, existing: Any) -> str:
    """The family when ``--family`` is not given: the checkpoint's, else the one the existing buffer records."""
    if cfg.ckpt is not None:
        from mbmeta.commands.evaluate import family_of_checkpoint

        return family_of_checkpoint(cfg.ckpt)
    if existing is not None and existing.family:
        return existing.family
    raise ValueError("--family is required (`mbmeta envs` lists the families)")


def _policy(cfg: Any, family: Any, source: Path | None, seed: int) -> tuple[Any, bool, str]:
    """The policy, whether it is given the true task (oracle models), and a name for it."""
    from mbmeta.control.factory import make_agent, make_initial_policy, require_controller

    if cfg.ckpt is not None:
        from mbmeta.commands.evaluate import describe_agent
        from mbmeta.training.checkpoint import load_module

        module = load_module(cfg.ckpt)
        agent = agent_settings(cfg)
        print(describe_agent(agent, source), flush=True)
        from mbmeta.runs.training_data import agent_latent_range

        bounds = agent_latent_range(cfg.ckpt, module.dynamics, agent)
        mpc = make_agent(module.dynamics, family, agent, seed=seed, latent_range=bounds)
        return mpc, module.hparams.adaptation == "oracle", f"the MPC agent of {cfg.ckpt}"
    name = cfg.policy or "random"
    if name == "scripted":
        require_controller(family, "--policy")
    if name in POLICIES:
        policy = make_initial_policy(family, name, noise=cfg.noise, scale=cfg.scale, seed=seed)
        return policy, False, name if name != "random" or cfg.scale == 1 else f"random (scale {cfg.scale})"
    return _imported_policy(name), False, name


def _imported_policy(spec: str) -> Any:
    """The object ``module:name`` names (a Policy or a callable on observation arrays)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"--policy must be random, scripted or module:name, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"--policy {spec!r}: cannot import {module_name!r} ({err})") from err
    try:
        policy = getattr(module, attr)
    except AttributeError:
        raise ValueError(f"--policy {spec!r}: module {module_name!r} has no {attr!r}") from None
    if not callable(policy) and not hasattr(policy, "act_tensor"):
        raise ValueError(f"--policy {spec!r} is a {type(policy).__name__}, not a Policy or a function of obs")
    return policy


def _check_compatible(existing: Any, new: Any, out: Path) -> None:
    """Appending keeps one family, one set of task parameters and one observation/action size per file."""
    mine = (existing.family, existing.task_names, existing.obs_dim, existing.action_dim)
    theirs = (new.family, new.task_names, new.obs_dim, new.action_dim)
    if mine != theirs:
        raise ValueError(
            f"{out} holds (family, task parameters, obs size, action size) {mine}, the new episodes {theirs}: "
            "write them to another --out (nothing written)"
        )

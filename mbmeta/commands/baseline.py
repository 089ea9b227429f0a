"""``mbmeta baseline``: a model-free baseline (stable-baselines3 PPO or SAC) on a task family, with its learning curve.

    mbmeta baseline --family juggler_balance --algo ppo --mode multitask --total_steps 1000000 --out runs/ppo-s0
    mbmeta baseline --family juggler_balance --algo sac --mode scratch --task_index 3 --out runs/sac-task3-s0

``multitask`` trains one policy on a new train-split task at every reset and evaluates it on the test tasks (the
same list as ``mbmeta evaluate --tasks N``); ``scratch`` trains on one test task (``--task_index``) and evaluates on
it. Every ``--eval_every`` environment steps the deterministic policy runs ``--eval_episodes`` episodes per evaluated
task: ``learning_curve.csv`` gets a row (return, episode length = the juggler's balance time, success rate against
environment steps). At the end: ``model.zip`` and ``results.json`` / ``results.csv`` in the format of ``mbmeta
evaluate``, and an offline W&B run. Running the same command again resumes from the last checkpoint
(``--checkpoint_every``). Needs the ``baselines`` extra: ``pip install -e '.[baselines]'``.
"""

from __future__ import annotations

from pathlib import Path

from jsonargparse import ActionConfigFile
from rich.console import Console

from mbmeta.commands import configure_threads, one_line_errors
from mbmeta.commands.agent_arguments import CommandParser
from mbmeta.commands.wandb_options import add_wandb_arguments, sync_hint, wandb_settings


def build_parser() -> CommandParser:
    """Arguments of ``mbmeta baseline``: the fields of :class:`~mbmeta.baselines.runner.BaselineSettings`, out, W&B."""
    from mbmeta.baselines.runner import BaselineSettings

    parser = CommandParser(
        prog="mbmeta baseline",
        description="Train a model-free baseline (stable-baselines3 PPO or SAC) on a task family, multi-task over "
        "the train split or from scratch on one test task, with a learning curve of test-task return and episode "
        "length (balance time) against environment steps. Resumable. Needs: pip install -e '.[baselines]'.",
        default_meta=False,
    )
    parser.add_argument("--config", action=ActionConfigFile, help="YAML config file(s)")
    parser.add_class_arguments(BaselineSettings, None, instantiate=False)
    parser.add_argument("--out", type=str, required=True, help="run directory (the same one again resumes)")
    add_wandb_arguments(parser)
    return parser


@one_line_errors("baseline")
def run(argv: list[str]) -> int:
    """Parse ``argv``, train and evaluate the baseline, print the summary; returns the exit code."""
    from mbmeta.baselines.runner import BaselineSettings, train_baseline
    from mbmeta.commands.evaluate import print_summary

    cfg = build_parser().parse_args(argv)
    configure_threads()
    settings = BaselineSettings(**{f: cfg[f] for f in BaselineSettings.__dataclass_fields__})
    settings.validate()  # before the first line of output
    console = Console()
    wandb = wandb_settings(cfg)
    console.print(
        f"baseline {settings.method} on {settings.family}: {settings.total_steps} environment steps, evaluated every "
        f"{settings.eval_every}; writing to {cfg.out}/",
        markup=False,
    )
    result = train_baseline(
        settings,
        cfg.out,
        wandb_init=wandb.init_kwargs(),
        log_model=wandb.log_model,
        log=lambda text: console.print(text, markup=False, soft_wrap=True),
    )
    print_summary(result.records, console, title=f"final evaluation: episode return (mean ± std), {settings.method}")
    reached = result.steps_to_target
    target = f"length_mean >= {settings.target_length:g}" if settings.target_length else "90 % of the episode length"
    console.print(
        f"{target}: " + (f"first reached at {reached} environment steps" if reached is not None else "not reached"),
        markup=False,
    )
    out = Path(cfg.out)
    console.print(f"written to {out}/: model.zip, learning_curve.csv, results.json, results.csv", markup=False)
    hint = sync_hint(out, wandb)
    if hint:
        console.print(hint, markup=False)
    return 0

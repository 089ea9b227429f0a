"""The ``agent`` group of the commands that plan (``train``, ``evaluate``, ``transfer``) and the parser they share.

The planner is typed settings chosen by short name (:mod:`mbmeta.planners.settings`)::

    --agent.planner icem --agent.planner.population 300
    agent: {planner: {class_path: icem, init_args: {population: 300}}}     # YAML

:class:`CommandParser` is jsonargparse's parser with three additions:

- ``--help`` lists every planner's options with their help text (jsonargparse itself shows one planner's with
  ``--agent.planner.help NAME``);
- switching planners never carries the previous planner's *defaults* over (jsonargparse keeps every init arg the
  new class accepts, defaults included: jsonargparse issue #460). Options given explicitly, in a config file or
  on the command line, still carry over when the new planner has them, as jsonargparse documents
  (``--print_config`` prints the result);
- the keys renamed with typed planner settings (``agent.planner_options``, ``agent.context_size``) are refused
  with a one-line error that gives the new spelling.
"""

from __future__ import annotations

import dataclasses
import sys
import textwrap
from collections.abc import Sequence
from typing import Any

from jsonargparse import ArgumentParser, DefaultHelpFormatter, Namespace

from mbmeta.commands.parsing import ShortErrors
from mbmeta.control.settings import AgentSettings
from mbmeta.planners.settings import PLANNER_SETTINGS, planner_name

PLANNER_KEY = "agent.planner"

RENAMED = {
    "planner_options": "agent.planner_options was replaced by typed planner options: write --agent.planner NAME "
    "--agent.planner.OPTION VALUE (YAML: planner: {class_path: NAME, init_args: {OPTION: VALUE}}), e.g. "
    "--agent.planner cem --agent.planner.population 300",
    "context_size": "agent.context_size was renamed: write agent.context_length (the K of data.context_length)",
}


class _KeepListingFormatter(DefaultHelpFormatter):
    """Wraps descriptions as usual but prints a multi-line epilog (the planner listing) line by line."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line + "\n" for line in text.splitlines())
        return super()._fill_text(text, width, indent)


class CommandParser(ShortErrors, ArgumentParser):
    """jsonargparse's parser for the commands (see the module docstring), with short parse errors."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _KeepListingFormatter)
        super().__init__(*args, **kwargs)

    def add_agent_arguments(self) -> None:
        """The ``agent`` group (:class:`AgentSettings`) and the planner listing at the end of ``--help``."""
        self.add_class_arguments(AgentSettings, "agent")
        self.epilog = planner_listing()

    def parse_args(self, args: Sequence[str] | None = None, *pargs: Any, **kwargs: Any) -> Namespace:
        """Parse as jsonargparse does, then give a switched planner its own defaults (see the module docstring)."""
        args = list(sys.argv[1:] if args is None else args)
        print_config = [a for a in args if a.split("=")[0] == "--print_config"]
        if print_config:  # printed below, after the planner's defaults are fixed
            args = [a for a in args if a not in print_config]
        cfg = super().parse_args(args, *pargs, **kwargs)
        if kwargs.get("defaults", True) and self._has_planner_group():
            given = super().parse_args(args, *pargs, **{**kwargs, "defaults": False}).get(PLANNER_KEY)
            if given is not None:
                cfg[PLANNER_KEY] = self._without_leaked_defaults(given)
        if print_config:
            print(self.dump(cfg), end="")
            self.exit(0)
        return cfg

    def error(self, message: str, ex: Exception | None = None) -> Any:
        """Report a parse error as jsonargparse does, with the new spelling when a renamed key was given."""
        renamed = [hint for key, hint in RENAMED.items() if key in message]
        if renamed:
            message = "; ".join(renamed)
        elif f'"{PLANNER_KEY}"' in message and "import path" in message.lower():  # jsonargparse's "unknown class"
            message += f"\n  the planners are: {', '.join(PLANNER_SETTINGS)}"
        return super().error(message, ex)

    def _has_planner_group(self) -> bool:
        return any(action.dest == PLANNER_KEY for action in self._actions)

    def _without_leaked_defaults(self, given: Namespace) -> Namespace:
        """The planner of an explicit (defaults-free) parse, with the defaults of that planner filled in.

        The defaults are those of the parser (e.g. a run's recorded planner) when it names the same planner, else
        the planner's own.
        """
        name = planner_name(given["class_path"])
        default = self.get_defaults().get(PLANNER_KEY)
        if default is not None and planner_name(default["class_path"]) == name:
            base = default.get("init_args", Namespace()).as_dict()
        else:
            base = PLANNER_SETTINGS[name]().options()
        explicit = given.get("init_args") or Namespace()
        return Namespace(class_path=given["class_path"], init_args=Namespace(**{**base, **explicit.as_dict()}))


def agent_settings(cfg: Namespace) -> AgentSettings:
    """The :class:`AgentSettings` of a parsed command line (its ``agent`` group).

    Raises:
        ValueError: a planner option the planner refuses (e.g. ``elites`` > ``population``), naming the planner.
    """
    return AgentSettings.from_config(cfg.agent.as_dict())


def planner_listing(width: int = 100) -> str:
    """Every planner's options with their help text (from the settings classes' docstrings), for ``--help``."""
    from docstring_parser import parse  # jsonargparse's own docstring reader, only needed for help

    header = (
        "planners: --agent.planner NAME chooses one, --agent.planner.OPTION VALUE sets an option (YAML: planner: "
        "{class_path: NAME, init_args: {OPTION: VALUE}}); the action bounds come from the task family. The default "
        f"planner is {AgentSettings().planner} (evaluate and transfer: the run's). Each planner and its defaults:"
    )
    lines = textwrap.wrap(header, width)
    for name, cls in PLANNER_SETTINGS.items():
        doc = parse(cls.__doc__ or "")
        lines += ["", *textwrap.wrap(f"{name}: {doc.short_description}", width, subsequent_indent="    ")]
        helps = {p.arg_name: " ".join((p.description or "").split()) for p in doc.params}
        for f in dataclasses.fields(cls):
            entry = f"--agent.planner.{f.name} ({_type_name(f.type)}, default {f.default}): {helps.get(f.name, '')}"
            lines += textwrap.wrap(entry, width, initial_indent="  ", subsequent_indent="      ")
    return "\n".join(lines)


def _type_name(annotation: Any) -> str:
    return annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))

"""Parse errors that fit on a screen: one usage line, the error, and where the full help is.

argparse and jsonargparse print a command's whole usage before a parse error: for ``mbmeta train`` that is 55 lines
of options above the one line that matters. The parsers of the ``mbmeta`` commands print instead::

    usage: mbmeta train [-h] [--config CONFIG] [--print_config[=flags]] ...
    mbmeta train: error: unrecognized arguments: --loop.iteratons (did you mean --loop.iterations?)
    `mbmeta train --help` lists every option

and exit with code 2, as argparse does.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from typing import Any, NoReturn

from jsonargparse import ArgumentParser

UNRECOGNISED = "unrecognized arguments: "


def short_usage(parser: argparse.ArgumentParser, width: int = 100) -> str:
    """The first line of a parser's usage, cut at ``width`` characters and ended with ``...`` if anything follows."""
    usage = " ".join(parser.format_usage().split()).replace(" [options]", "")  # a subcommand's "mbmeta [options] fit"
    if len(usage) <= width:
        return usage
    cut = usage[:width].rsplit(" [", 1)[0]  # end before an option that does not fit whole
    return f"{cut} ..."


def suggestions(parser: argparse.ArgumentParser, message: str) -> str:
    """For ``unrecognized arguments: ...``: the message with the closest known option after each unknown flag."""
    if not message.startswith(UNRECOGNISED):
        return message
    known = [option for action in parser._actions for option in action.option_strings]
    words = []
    for word in message[len(UNRECOGNISED) :].split():
        close = difflib.get_close_matches(word.split("=", 1)[0], known, n=1) if word.startswith("--") else []
        words.append(f"{word} (did you mean {close[0]}?)" if close else word)
    return UNRECOGNISED + " ".join(words)


def report_parse_error(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    """Print the short usage, the error and the help hint on stderr and exit with code 2."""
    prog = parser.prog.replace(" [options]", "")
    sys.stderr.write(f"{short_usage(parser)}\n{prog}: error: {suggestions(parser, message)}\n")
    sys.stderr.write(f"`{prog} --help` lists every option\n")
    parser.exit(2)


class ShortErrors:
    """Mixin for an argparse or jsonargparse parser: parse errors as :func:`report_parse_error` prints them.

    A jsonargparse parser that is told not to exit on errors (``exit_on_error=False``, or its debug mode) keeps
    raising them.
    """

    def error(self, message: str, *args: Any) -> NoReturn:
        """Report a parse error in three lines and exit (code 2)."""
        if isinstance(self, ArgumentParser):
            from jsonargparse._common import debug_mode_active  # jsonargparse's own switch for raising instead

            if not self.exit_on_error or debug_mode_active():
                super().error(message, *args)  # type: ignore[misc]  # raises
            ex = args[0] if args else None
            parser = getattr(ex, "subcommand_parser", None) or self
            report_parse_error(parser, message)
        report_parse_error(self, message)  # type: ignore[arg-type]


class ShortArgumentParser(ShortErrors, argparse.ArgumentParser):
    """argparse's parser with :class:`ShortErrors`."""

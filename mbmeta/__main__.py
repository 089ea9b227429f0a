"""``python -m mbmeta``: the same as the ``mbmeta`` command."""

from mbmeta.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

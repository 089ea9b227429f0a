"""The ``mbmeta`` subcommands, one module each (dispatched by :mod:`mbmeta.cli`)."""

"""Subcommands of the ``analog-ep`` command, one module each, plus shared option parsing."""
